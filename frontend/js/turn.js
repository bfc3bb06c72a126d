// One question and its answer on the page: the user's bubble, the streamed answer,
// its sources panel, actions (copy, regenerate) and error notices.

import { api, documentUrl } from "./api.js";
import { icon } from "./icons.js";
import { renderAnswer } from "./render.js";

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export function userBubble(text) {
  const article = el("article", "msg user");
  article.append(el("div", "bubble", text));
  return article;
}

/** The assistant's side of a turn; its methods update it as events arrive. */
export class AssistantTurn {
  constructor({ onRegenerate }) {
    this.sources = [];
    this.text = "";
    this.article = el("article", "msg assistant");
    this.article.setAttribute("aria-label", "Answer");
    this.card = el("div", "card");
    this.answer = el("div", "answer waiting");
    this.answer.setAttribute("aria-busy", "true");
    const thinking = el("span", "thinking", "Searching the course materials…");
    this.answer.append(thinking);
    this.card.append(this.answer);
    this.sourcesBox = el("details", "sources");
    this.sourcesBox.hidden = true;
    this.footer = el("div", "turn-footer");
    this.article.append(this.card, this.sourcesBox, this.footer);
    this.onRegenerate = onRegenerate;
    this.pending = false;
  }

  /** Every answer slot is taken: say where this question stands instead of a silent wait. */
  setWaiting(message) {
    const thinking = this.answer.querySelector(".thinking");
    if (thinking) thinking.textContent = message;
  }

  setSources(sources) {
    this.sources = sources || [];
    this.sourcesBox.replaceChildren();
    this.sourcesBox.hidden = this.sources.length === 0;
    if (!this.sources.length) return;
    const summary = el("summary", "", `${this.sources.length} source${this.sources.length > 1 ? "s" : ""} from the course materials`);
    const list = el("ol");
    this.sources.forEach((source) => list.append(sourceItem(source)));
    this.sourcesBox.append(summary, list);
    if (this.answer.classList.contains("waiting")) {
      this.answer.querySelector(".thinking").textContent = "Writing the answer…";
    }
  }

  /** Append streamed text; re-rendering is batched to one paint per frame. */
  appendText(delta) {
    this.text += delta;
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.render(true);
    });
  }

  render(streaming) {
    this.answer.classList.remove("waiting");
    this.answer.classList.toggle("streaming", streaming);
    this.answer.setAttribute("aria-busy", String(streaming));
    renderAnswer(this.answer, this.text, this.sources.length, (n) => this.showSource(n));
  }

  showSource(n) {
    this.sourcesBox.open = true;
    const item = this.sourcesBox.querySelector(`[data-source="${n}"]`);
    if (!item) return;
    for (const other of this.sourcesBox.querySelectorAll(".source.highlight")) other.classList.remove("highlight");
    item.classList.add("highlight", "expanded");
    item.scrollIntoView({ block: "nearest", behavior: "smooth" });
    item.querySelector(".open-page, .toggle")?.focus({ preventScroll: true });
  }

  /** The stored or streamed final state: full text, badges, actions, timings. */
  finish(result) {
    this.text = result.answer ?? this.text;
    if (result.sources) this.setSources(result.sources);
    this.render(false);
    this.footer.replaceChildren();
    const copy = el("button", "button small copy", "Copy");
    copy.type = "button";
    copy.addEventListener("click", () => copyText(this.text, copy));
    const regenerate = el("button", "button small regenerate", "Regenerate");
    regenerate.type = "button";
    regenerate.addEventListener("click", () => this.onRegenerate(this));
    this.footer.append(copy, regenerate);
    if (result.message_id && result.conversation_id && result.feedback !== undefined) {
      this.footer.append(new Rating(result.conversation_id, result.message_id, result.feedback).element);
    }
    if (result.stopped) this.footer.append(el("span", "badge stopped", "Stopped"));
    if (result.interrupted) this.footer.append(el("span", "badge stopped", "Cut off by a server fault: regenerate it"));
    if (result.finish_reason === "no_relevant_sources") this.footer.append(el("span", "badge", "Not in the materials"));
    if (result.finish_reason === "length") this.footer.append(el("span", "badge stopped", "Cut at the length limit"));
    const meta = describeTimings(result);
    if (meta) this.footer.append(el("span", "meta", meta));
  }

  /** The user pressed Stop: keep what arrived, say so. */
  stopped() {
    if (!this.text) this.text = "_Stopped before the answer began._";
    this.finish({ answer: this.text, stopped: true });
  }

  /** Show a plain-language error with a retry button in place of the answer. */
  fail(error, onRetry) {
    this.answer.classList.remove("waiting", "streaming");
    this.answer.setAttribute("aria-busy", "false");
    if (!this.text) this.answer.replaceChildren();
    const notice = el("div", "notice");
    notice.setAttribute("role", "alert");
    const words = el("p");
    words.append(el("strong", "", error.title || "Something went wrong"), error.message || String(error));
    const retry = el("button", "button small primary retry", "Retry");
    retry.type = "button";
    retry.addEventListener("click", onRetry);
    notice.append(words, retry);
    this.card.replaceWith(notice);
    this.card = notice;
    this.footer.replaceChildren();
  }
}

/** Thumbs up or down on an answer, changeable; a thumbs down asks what was wrong. */
class Rating {
  constructor(conversationId, messageId, feedback) {
    this.conversationId = conversationId;
    this.messageId = messageId;
    this.vote = feedback?.vote || null;
    this.element = el("span", "rating");
    this.up = this.button("thumbUp", "Helpful", "up");
    this.down = this.button("thumbDown", "Not helpful", "down");
    this.status = el("span", "rating-status");
    this.status.setAttribute("role", "status");
    this.form = el("form", "rating-comment");
    this.form.hidden = true;
    this.comment = el("input");
    this.comment.maxLength = 1000;
    this.comment.placeholder = "What was wrong? (optional)";
    this.comment.setAttribute("aria-label", "What was wrong with this answer");
    this.comment.value = feedback?.comment || "";
    const send = el("button", "button small", "Send");
    send.type = "submit";
    this.form.append(this.comment, send);
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.send("down", this.comment.value).then(() => { this.form.hidden = true; });
    });
    this.element.append(this.up, this.down, this.status, this.form);
    this.show();
  }

  button(symbol, label, vote) {
    const button = el("button", `button small vote vote-${vote}`);
    button.append(icon(symbol, 15));
    button.type = "button";
    button.title = label;
    button.setAttribute("aria-label", label);
    button.addEventListener("click", () => {
      if (this.vote === vote) this.send(null);
      else this.send(vote).then(() => { if (vote === "down") { this.form.hidden = false; this.comment.focus(); } });
    });
    return button;
  }

  async send(vote, comment = "") {
    try {
      await api.rate(this.conversationId, this.messageId, vote, comment);
      this.vote = vote;
      this.status.textContent = vote ? "Thanks for the feedback" : "";
      if (!vote) this.form.hidden = true;
    } catch (error) {
      this.status.textContent = error.message || "Could not save the rating";
    }
    this.show();
  }

  show() {
    this.up.setAttribute("aria-pressed", String(this.vote === "up"));
    this.down.setAttribute("aria-pressed", String(this.vote === "down"));
  }
}

function sourceItem(source) {
  const item = el("li", "source");
  item.dataset.source = String(source.number);
  const head = el("header");
  const pages = source.page_start == null ? "" :
    source.page_start === source.page_end ? `p. ${source.page_start}` : `pp. ${source.page_start}–${source.page_end}`;
  const printed = source.page_label && source.page_label !== String(source.page_start) ? ` (printed ${source.page_label})` : "";
  const section = source.heading ? source.heading.split(" › ").pop() : "";
  const where = source.page_start == null
    ? `${source.file}${source.heading ? " › " + source.heading : ""}`
    : `${source.file}, ${pages}${printed}${section ? ", " + section : ""}`;
  const relevance = Math.max(0, Math.min(1, source.score));
  const bar = el("span", "bar");
  const fill = el("span");
  fill.style.width = `${Math.round(relevance * 100)}%`;
  bar.append(fill);
  const rel = el("span", "relevance");
  rel.title = "How close the passage is to the question (cosine similarity, 0 to 1)";
  rel.append(bar, `relevance ${source.score.toFixed(2)}`);
  head.append(el("span", "num", `[${source.number}]`), el("span", "where", where));
  if (source.ocr) {
    const scanned = el("span", "ocr", "OCR");
    scanned.title = "Read from a scanned page by text recognition: a word may be misread. Open the page to check.";
    head.append(scanned);
  }
  head.append(rel);

  // PDF text keeps the page's line breaks; reflow them, keep paragraph breaks.
  const passage = el("p", "passage", source.text.replace(/([^\n])\n(?!\n)/g, "$1 "));
  const actions = el("div", "source-actions");
  const toggle = el("button", "button small toggle", "Show whole passage");
  toggle.type = "button";
  toggle.addEventListener("click", () => {
    item.classList.toggle("expanded");
    toggle.textContent = item.classList.contains("expanded") ? "Show less" : "Show whole passage";
  });
  const open = el("a", "button small open-page", /\.pdf$/i.test(source.file) && source.page_start ? `Open page ${source.page_start} ↗` : "Open document ↗");
  open.href = documentUrl(source.file, source.page_start);
  open.target = "_blank";
  open.rel = "noopener";
  actions.append(toggle, open);
  item.append(head, passage, actions);
  return item;
}

function describeTimings(result) {
  const t = result.timings || {};
  const parts = [];
  if (t.first_token_ms != null) parts.push(`first words after ${(t.first_token_ms / 1000).toFixed(1)} s`);
  if (t.total_ms != null) parts.push(`${(t.total_ms / 1000).toFixed(1)} s in all`);
  if (result.usage?.completion_tokens) parts.push(`${result.usage.completion_tokens} tokens`);
  return parts.join(" · ");
}

async function copyText(text, button) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // Plain http (no secure context): the older way still works.
    const area = document.createElement("textarea");
    area.value = text;
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  button.textContent = "Copied";
  setTimeout(() => (button.textContent = "Copy"), 1500);
}
