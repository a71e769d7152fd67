// fewrec web page: describe or pick a user, like items, see recommendations with reasons.
// Everything is an anonymous session (POST /recommend), so the page needs no API key.
"use strict";

// liked and disliked: item id -> title; the ratings a like and a dislike are sent at come from
// the served model (its scale: 5 and 1 of 5 stars, 1 and 0 on implicit data)
const state = {
  liked: new Map(), disliked: new Map(), seq: 0, searchSeq: 0, modelVersion: null, loadingModel: false,
  likeRating: null, dislikeRating: null,
};
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "onclick") node.addEventListener("click", v);
    else if (k === "text") node.textContent = plain(v);
    // (shown text only: an id in data-item must stay the id the likes are kept under)
    else node.setAttribute(k, k.startsWith("data-") ? v : plain(v));
  }
  for (const c of children) node.append(c);
  return node;
}

// Text without bidi overrides and isolates (U+202A-202E, U+2066-2069): one in a title turned
// the rest of a reason around it backwards ("... ateZ dna eltit OLR").
function plain(text) {
  return String(text).replace(/[\u202A-\u202E\u2066-\u2069]/g, "");
}

// What an item is called: its title, or its id where the title is missing or blank (a title of
// spaces showed a blank row, and a chip and a button of nothing).
function label(item) {
  const title = typeof item.title === "string" ? item.title.trim() : "";
  return title || item.item || item.id;
}

async function api(path, body) {
  const opts = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  let resp;
  try {
    resp = await fetch(path, opts);
  } catch {
    // (the browser's own words: "Failed to fetch", "NetworkError when attempting to fetch resource.")
    // (and the header is read again once it answers: it may be another model after a restart)
    state.modelVersion = null;
    throw new Error("Cannot reach the fewrec service: is it running? Press Refresh above to try again.");
  }
  let data;
  try {
    data = await resp.json();
  } catch {
    throw new Error(`${resp.status} ${resp.statusText}`.trim()); // no JSON: a proxy's error page
  }
  if (!resp.ok) {
    const message = data.message || `${resp.status} ${resp.statusText}`.trim();
    // a validation error's message already names its field ("q: String should have ...")
    const named = !data.field || message.startsWith(`${data.field}:`);
    const error = new Error(named ? message : `${data.field}: ${message}`);
    error.status = resp.status;
    error.field = data.field;
    throw error;
  }
  return data;
}

const SHORT_TITLE = 80;

// A title cut to SHORT_TITLE characters with an ellipsis (chips and reasons hold many of them).
function short(title) {
  const chars = [...String(title)];
  return chars.length > SHORT_TITLE ? `${chars.slice(0, SHORT_TITLE - 1).join("")}…` : String(title);
}

// The server's reason with the long titles of the items it cites (those the page knows) shortened.
function shortReason(item) {
  let text = item.reason;
  for (const id of item.because || []) {
    const title = state.liked.get(id);
    if (title && short(title) !== title) text = text.split(title).join(short(title));
  }
  return text;
}

function describe(item) {
  const f = item.fields || {};
  const parts = [];
  if (f.year) parts.push(String(f.year));
  if (Array.isArray(f.genres) && f.genres.length) parts.push(f.genres.join(", "));
  return parts.join(" · ");
}

function like(item) {
  const id = item.item || item.id;
  state.disliked.delete(id);
  state.liked.set(id, label(item));
  renderLiked();
  refresh();
}

// "Not for me": sent as a dislike (the model's dislike rating), never recommended back; the
// exploration's label asked for feedback the page had no way to give but a like.
function dislike(item) {
  const id = item.item || item.id;
  state.liked.delete(id);
  state.disliked.set(id, label(item));
  renderLiked();
  refresh();
}

// A Like button says whether its item is liked (a search listed liked items with "Like" as
// before). aria-disabled, not disabled: disabling the button just pressed drops keyboard focus.
function setLiked(button, liked) {
  button.textContent = liked ? "Liked" : "Like";
  button.setAttribute("aria-disabled", String(liked));
  button.setAttribute("aria-label", plain(`${liked ? "Liked" : "Like"} ${button.dataset.title}`));
}

function setDisliked(button, disliked) {
  button.textContent = disliked ? "Not for me ✓" : "Not for me";
  button.setAttribute("aria-disabled", String(disliked));
  button.setAttribute("aria-label", plain(`${disliked ? "Marked not for me:" : "Not for me:"} ${button.dataset.title}`));
}

function markLiked() {
  for (const button of document.querySelectorAll("button[data-testid=like]")) {
    setLiked(button, state.liked.has(button.dataset.item));
  }
  for (const button of document.querySelectorAll("button[data-testid=dislike]")) {
    setDisliked(button, state.disliked.has(button.dataset.item));
  }
}

function renderLiked() {
  for (const [boxId, items, what] of [["liked", state.liked, "likes"], ["disliked", state.disliked, "not for me"]]) {
    const box = $(boxId);
    box.replaceChildren();
    for (const [id, title] of items) {
      box.append(el("button", {
        type: "button", class: "chip", "data-item": id, title: `${title} (click to remove)`,
        "aria-label": `Remove ${title} from ${what}`,
        onclick: () => {
          // (the chip pressed is gone: keep the keyboard's place on the next one, or the search)
          const at = [...items.keys()].indexOf(id);
          items.delete(id);
          renderLiked();
          const chips = box.querySelectorAll("button.chip");
          (chips[Math.min(at, chips.length - 1)] || $("search")).focus();
          refresh();
        },
      }, short(title)));
    }
  }
  markLiked();
}

function itemRow(item, withReason) {
  const id = item.item || item.id;
  // an item the served model cannot recommend yet (added since its training): liking it only
  // counts as seen, which the Like button alone did not tell
  const meta = [describe(item), item.recommendable === false ? "new: not yet recommended by this model" : ""];
  const info = el("div", {},
    el("div", { class: "title", title: label(item), text: label(item) }),
    el("div", { class: "meta", text: meta.filter(Boolean).join(" · ") }));
  if (withReason && item.reason) {
    info.append(el("div", { class: "reason", "data-testid": "reason", title: item.reason, text: shortReason(item) }));
  }
  const button = el("button", {
    "data-testid": "like", "data-item": id, "data-title": label(item),
    onclick: () => { if (!state.liked.has(id)) like(item); },
  });
  setLiked(button, state.liked.has(id));
  const not = el("button", {
    class: "ghost", "data-testid": "dislike", "data-item": id, "data-title": label(item),
    onclick: () => { if (!state.disliked.has(id)) dislike(item); },
  });
  setDisliked(not, state.disliked.has(id));
  return el("li", { class: "item", "data-item": id }, info, el("div", { class: "buttons" }, button, not));
}

// What the form asks for before a request can go: said as a prompt, not an error.
class Prompt extends Error {}

// The request for the form as it stands; an Error saying what to mend where it cannot be sent.
function request() {
  const body = { k: 10, items: [...state.liked.keys()] };
  if (state.disliked.size) {
    if (state.dislikeRating === null) {
      body.exclude = [...state.disliked.keys()]; // (the model's scale not read yet: left out, at least)
    } else {
      body.items.push(...state.disliked.keys());
      body.ratings = [
        ...[...state.liked.keys()].map(() => state.likeRating),
        ...[...state.disliked.keys()].map(() => state.dislikeRating),
      ];
    }
  }
  // "" leaves explore out: the service's default (explore while the user has few history items)
  const explore = $("explore").value;
  if (explore) body.explore = explore === "true";
  const mode = document.querySelector("input[name=mode]:checked").value;
  if (mode === "known") {
    const user = $("user-id").value.trim();
    // (an empty id showed the anonymous list as if it were the known user's; it was a red error
    // the moment "A known user" was chosen, before anything could be typed)
    if (!user) throw new Prompt("Enter a user id, or choose \"A new user\".");
    body.user = user;
  } else {
    // (inputs the served model does not read are hidden, and what they still hold is not sent)
    const text = $("about").value.trim();
    if (text && shown("about")) body.text = text;
    const info = {};
    const ageText = $("age").value.trim();
    // (parseInt dropped "thirty" without a word and read "0x1A" as 0)
    if (ageText && shown("age")) {
      if (!/^\d{1,3}$/.test(ageText)) throw new Error("Age: give a whole number of years, e.g. 30.");
      info.age = Number(ageText);
    }
    if ($("occupation").value.trim() && shown("occupation")) info.occupation = $("occupation").value.trim();
    for (const input of $("side-extra").querySelectorAll("input")) {
      if (input.value.trim()) info[input.dataset.field] = input.value.trim();
    }
    if (Object.keys(info).length) body.user_info = info;
  }
  return body;
}

async function refresh() {
  const seq = ++state.seq;
  $("status").textContent = "updating…";
  $("error").textContent = "";
  let body;
  try {
    const started = performance.now();
    body = request();
    const data = await api("/recommend", body);
    if (seq !== state.seq) return; // a newer request is on its way (and will say what was dropped)
    const dropped = state.dropped || [];
    state.dropped = [];
    // a Like pressed in the list: the list is rebuilt, and the keyboard's place kept on the row
    // of the same place in the new one (it fell to the page's start)
    const rows = [...$("recs").children];
    const focused = rows.findIndex((row) => row.contains(document.activeElement));
    const kind = document.activeElement?.dataset?.testid === "dislike" ? "dislike" : "like";
    $("recs").replaceChildren(...data.items.map((it) => itemRow(it, true)));
    const buttons = $("recs").querySelectorAll(`button[data-testid=${kind}]`);
    if (focused >= 0 && buttons.length) buttons[Math.min(focused, buttons.length - 1)].focus();
    if (data.model_version !== state.modelVersion) loadModelInfo(); // a hot swap since the header was read
    const ms = Math.round(performance.now() - started);
    // a note's "Fix: ..." is for the service's operator (a setting, a CLI command), not this page's user
    // and so is an aside naming an API setting, "(exclude_seen=False keeps it)": no box here sets it
    const told = (data.notes || []).map((n) => n.split(" Fix: ")[0].replace(/ \([^()]*\w=[^()]*\)/g, ""));
    const said = [...dropped.map((t) => `${t} is no longer in the catalogue: removed from your list`), ...told];
    const notes = said.length ? ` · note: ${said.join("; ")}` : "";
    const policy = data.policy === "greedy" ? "best guess (greedy)" : `exploring (${data.policy})`;
    const count = data.items.length ? `${data.items.length} items`
      : body.user !== undefined ? "Nothing left to recommend for this user"
      : "Nothing left to recommend: remove some likes, or change what you told us";
    $("status").textContent = `${count} · ${policy} · ${ms} ms${notes}`;
    $("recs").dataset.version = String(seq);
  } catch (err) {
    if (seq !== state.seq) return;
    // a liked item deleted from the catalogue (or gone in a hot swap): "items[1]: item '100' was
    // deleted" named no chip the user could find, and every later request failed the same way
    const gone = err.status === 404 && /^(items|exclude)\[(\d+)\]$/.exec(err.field || "");
    const sent = gone ? (gone[1] === "items" ? body.items : body.exclude) : [];
    const id = gone ? sent[Number(gone[2])] : undefined;
    if (id !== undefined) {
      state.dropped = [...(state.dropped || []), state.liked.get(id) || state.disliked.get(id) || id];
      state.liked.delete(id);
      state.disliked.delete(id);
      renderLiked();
      refresh();
      return;
    }
    // the list on screen answered an earlier request: leave none rather than one that looks current
    $("recs").replaceChildren();
    $("recs").dataset.version = String(seq);
    if (err instanceof Prompt) {
      $("status").textContent = err.message;
      return;
    }
    $("status").textContent = "";
    // an unknown user id (also while it is being typed): the service's fix ("create it with PUT
    // /users/{id}") is for its operator, who holds the API key this page does not
    const unknownUser = err.status === 404 && err.field === "user";
    $("error").textContent = unknownUser  // (the id asked for: the box may hold more by now)
      ? `No user "${body.user}" here: check the id, or choose "A new user".`
      : err.message;
  }
}

const SEARCH_LIMIT = 8;
let searchTimer = null;
function search() {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(async () => {
    const q = $("search").value.trim();
    // searches can answer out of order: only the newest may fill the list
    const seq = ++state.searchSeq;
    if (!q) {
      $("search-results").replaceChildren();
      $("search-error").textContent = "";
      $("search-status").textContent = "";
      return;
    }
    try {
      const data = await api(`/items?limit=${SEARCH_LIMIT}&q=${encodeURIComponent(q)}`);
      if (seq !== state.searchSeq) return;
      $("search-results").replaceChildren(...data.items.map((it) => itemRow(it, false)));
      $("search-error").textContent = "";
      // (no match left the list blank without a word, and more matches than shown were not said)
      const n = data.items.length;
      $("search-status").textContent = !n
        ? `No items match "${q}".`
        : data.total > n ? `${n} of ${data.total} matches: type more to narrow them` : `${n} ${n === 1 ? "match" : "matches"}`;
    } catch (err) {
      if (seq !== state.searchSeq) return;
      $("search-results").replaceChildren();
      $("search-status").textContent = "";
      $("search-error").textContent = err.message;
    }
  }, 150);
}

// Whether the service can explore at all (engine.py, Engine._policy).
function explores(cfg) {
  const width = cfg.policy === "thompson" ? cfg.scale : cfg.c;
  return !(cfg.policy === "off" || cfg.available === false || width === 0);
}

// What the service does when a request leaves explore out.
function autoExploration(cfg) {
  if (!explores(cfg)) return "the best guess (this service does not explore)";
  return `explore while fewer than ${cfg.until} liked items are known`;
}

// Whether the input ``id`` is on show (the served model reads it).
function shown(id) {
  return !$(id).closest("[hidden]");
}

// Show the inputs the served model reads (text, side-info fields) and the exploration choices it
// has: a model that reads no text had a text box whose words only came back as a grey note.
function fitForm(info) {
  const side = new Set(info.side_fields || []);
  $("about-box").hidden = info.reads_text === false;
  $("age-box").hidden = !side.has("age");
  $("occupation-box").hidden = !side.has("occupation");
  // (a field the API cannot name, "home country", would get a box whose every value is a 422)
  const named = (f) => /^[A-Za-z_][A-Za-z0-9_-]*$/.test(f);
  fitSideFields([...side].filter((f) => f !== "age" && f !== "occupation" && named(f)));
  suggest($("occupation"), (info.side_values || {}).occupation);
  for (const input of $("side-extra").querySelectorAll("input")) {
    suggest(input, (info.side_values || {})[input.dataset.field]);
  }
  // (it knew only age and occupation: a model of a "country" field was said to read nothing)
  $("reads-nothing").hidden = !(info.reads_text === false && side.size === 0);
  const can = explores(info.exploration || {});
  for (const option of $("explore").querySelectorAll("option[value=true]")) {
    option.hidden = !can;
    option.disabled = !can;
  }
  if (!can && $("explore").value === "true") $("explore").value = "";
}

// The values the model learned for a field, offered as the box is typed in (a datalist): one
// who typed "female" met "never seen in training ... it saw 'F', 'M'" only after the request.
function suggest(input, values) {
  const id = `${input.id}-values`;
  $(id)?.remove();
  input.removeAttribute("list");
  if (!values || !values.length) return;
  const list = el("datalist", { id }, ...values.map((v) => el("option", { value: v })));
  input.after(list);
  input.setAttribute("list", id);
}

// A text box for each side-info field but age and occupation (which have their own), kept with
// what it holds while the served model reads its field; the service reads "31" as a number where
// its field is one.
function fitSideFields(fields) {
  const box = $("side-extra");
  const had = new Map([...box.querySelectorAll("input")].map((i) => [i.dataset.field, i.value]));
  box.replaceChildren(
    ...fields.map((field, n) => {
      const div = document.createElement("div");
      const label = document.createElement("label");
      const input = document.createElement("input");
      input.type = "text";
      input.id = `side-field-${n}`;
      input.maxLength = 1000;
      input.dataset.field = field;
      input.dataset.testid = `side-${field}`;
      input.value = had.get(field) || "";
      input.addEventListener("input", debouncedRefresh);
      label.htmlFor = input.id;
      label.textContent = field.charAt(0).toUpperCase() + field.slice(1).replaceAll("_", " ");
      div.append(label, input);
      return div;
    }),
  );
}

// The header: the served model, read again whenever a response names another model version.
async function loadModelInfo() {
  if (state.loadingModel) return;
  state.loadingModel = true;
  try {
    const info = await api("/admin/model");
    const extra = () => [...$("side-extra").querySelectorAll("input")].map((i) => i.dataset.field);
    // (the ratings too: after a swap to a model of another scale, likes and dislikes were sent at
    // the old one's, a 1 of an implicit model's like read as a dislike of a star model's)
    const form = () =>
      JSON.stringify([shown("about"), shown("age"), shown("occupation"), extra(), $("explore").value,
        ...(state.disliked.size ? [state.likeRating, state.dislikeRating] : [])]);
    const before = form();
    state.modelVersion = info.version;
    state.likeRating = info.like_rating;
    state.dislikeRating = info.dislike_rating;
    $("model-info").textContent = `${info.model} · ${info.recommendable} items · model v${info.version}`;
    $("explore-auto").textContent = `Automatic: ${autoExploration(info.exploration || {})}`;
    fitForm(info);
    // a swap to a model that reads other inputs: the list on screen was asked with the old ones
    if (form() !== before) refresh();
  } catch {
    $("model-info").textContent = "";
  } finally {
    state.loadingModel = false;
  }
}

let typingTimer = null;
function debouncedRefresh() {
  clearTimeout(typingTimer);
  typingTimer = setTimeout(refresh, 300);
}

function init() {
  for (const radio of document.querySelectorAll("input[name=mode]")) {
    radio.addEventListener("change", () => {
      const known = radio.value === "known" && radio.checked;
      $("known-user").hidden = !known;
      $("new-user").hidden = known;
      refresh();
    });
  }
  for (const id of ["about", "age", "occupation", "user-id"]) $(id).addEventListener("input", debouncedRefresh);
  $("explore").addEventListener("change", refresh);
  // (the header too: a restarted service may serve another model under the same version number)
  $("refresh").addEventListener("click", () => { loadModelInfo(); refresh(); });
  $("search").addEventListener("input", search);
  loadModelInfo();
  refresh();
}

init();
