"""Few-shot adaptation, meta-learning, distillation and fine-tuning."""
