"""Scale: batch jobs on Ray, approximate nearest-neighbour indexes, synthetic catalogues.

Import the submodules directly; none of them is imported here, so ``import fewrec.scale`` stays
light and needs neither Ray nor FAISS:

* `fewrec.scale.ray_jobs`: Ray Data embedding, recommendations for all users, benchmark fan-out.
* `fewrec.scale.ann`: FAISS HNSW / IVF behind the vector-index protocol, `AutoIndex`, recall.
* `fewrec.scale.synthetic`: catalogues of any size from a real dataset's item vocabulary.
"""
