// The instructor's insight: what students asked that the materials do not answer, answers
// rated unhelpful, the pages answers lean on, questions per day (an inline SVG chart).

import { api } from "./api.js";
import { withCourse } from "./course.js";

const SVG = "http://www.w3.org/2000/svg";

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function svg(tag, attributes) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  return node;
}

export class InsightDialog {
  constructor({ dialog, openButton, closeButton, form, since, until, body }) {
    Object.assign(this, { dialog, form, since, until, body });
    openButton.addEventListener("click", () => this.open());
    closeButton.addEventListener("click", () => dialog.close());
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.refresh();
    });
  }

  async open() {
    if (!this.dialog.open) this.dialog.showModal();
    await this.refresh();
  }

  query() {
    const params = new URLSearchParams();
    if (this.since.value) params.set("since", this.since.value);
    if (this.until.value) params.set("until", this.until.value);
    return params.toString();
  }

  async refresh() {
    this.body.replaceChildren(el("p", "muted", "Reading the conversations…"));
    let report;
    try {
      report = await api.insight(this.query());
    } catch (error) {
      this.body.replaceChildren(el("p", "form-error", `${error.title}: ${error.message}`));
      return;
    }
    this.body.replaceChildren(
      this.summary(report), chart(report.per_day),
      this.section("Not answered by the materials", "not_covered", notCovered(report.not_covered),
                   "Questions the assistant declined, grouped by meaning: topics to add or to name as the materials do."),
      this.section("Answers rated unhelpful", "unhelpful", unhelpful(report.unhelpful)),
      this.section("Pages answers lean on", "pages", pages(report.pages)),
    );
  }

  summary(report) {
    const share = Math.round(report.declined_share * 100);
    const p = el("p", "insight-summary");
    p.dataset.questions = report.questions;
    p.dataset.declined = report.declined;
    p.textContent = `${report.questions} question${report.questions === 1 ? "" : "s"}, ${report.declined} declined as ` +
      `not covered (${share}%), ${report.votes_up} rated helpful, ${report.votes_down} unhelpful. ` +
      "Who asked is never shown.";
    return p;
  }

  section(title, table, content, note) {
    const box = el("section", `insight-section insight-${table}`);
    const head = el("header");
    const csv = el("a", "button small", "CSV");
    csv.href = withCourse(`api/insight/export.csv?table=${table}${this.query() ? "&" + this.query() : ""}`);
    csv.setAttribute("download", "");
    csv.setAttribute("aria-label", `Download “${title}” as CSV`);
    head.append(el("h3", "", title), csv);
    box.append(head);
    if (note) box.append(el("p", "muted", note));
    box.append(content);
    return box;
  }
}

/** Questions per day, the declined part in a second colour. */
function chart(days) {
  const figure = el("figure", "insight-chart");
  if (!days.length) {
    figure.append(el("p", "muted", "No questions in this period."));
    return figure;
  }
  const width = 640, height = 120, gap = 2;
  const most = Math.max(...days.map((d) => d.questions), 1);
  const bar = Math.min(40, Math.max(2, (width - gap * days.length) / days.length));
  const graphic = svg("svg", { viewBox: `0 0 ${width} ${height + 16}`, role: "img",
                               "aria-label": "Questions per day, declined ones darker" });
  days.forEach((day, i) => {
    const x = i * (bar + gap);
    const total = (day.questions / most) * height;
    const declined = (day.declined / most) * height;
    const all = svg("rect", { x, y: height - total, width: bar, height: total, class: "bar-asked" });
    all.append(svg("title", {}));
    all.firstChild.textContent = `${day.day}: ${day.questions} questions, ${day.declined} declined`;
    graphic.append(all, svg("rect", { x, y: height - declined, width: bar, height: declined, class: "bar-declined" }));
  });
  const first = svg("text", { x: 0, y: height + 13, class: "axis" });
  first.textContent = days[0].day;
  const last = svg("text", { x: width, y: height + 13, class: "axis", "text-anchor": "end" });
  last.textContent = days[days.length - 1].day;
  graphic.append(first, last);
  figure.append(graphic, el("figcaption", "muted", "Questions per day; the darker part was declined as not covered."));
  return figure;
}

function table(headers, rows) {
  if (!rows.length) return el("p", "muted", "None.");
  const t = el("table", "documents");
  const head = el("tr");
  headers.forEach((h) => head.append(el("th", "", h)));
  t.append(el("thead"), el("tbody"));
  t.tHead.append(head);
  rows.forEach((cells) => {
    const tr = el("tr");
    cells.forEach((cell) => tr.append(cell instanceof Node ? wrap(cell) : el("td", "", String(cell))));
    t.tBodies[0].append(tr);
  });
  const box = el("div", "table-wrap");
  box.append(t);
  return box;
}

function wrap(node) {
  const td = el("td");
  td.append(node);
  return td;
}

function notCovered(groups) {
  return table(["Questions", "Asked like"], groups.map((g) => {
    const what = el("details", "group");
    what.append(el("summary", "", g.label));
    if (g.questions.length > 1) {
      const list = el("ul");
      g.questions.slice(1, 20).forEach((q) => list.append(el("li", "", q)));
      what.append(list);
    }
    return [g.count, what];
  }));
}

function unhelpful(answers) {
  return table(["Question", "Answer", "Comments", "Sources"], answers.map((a) => {
    const answer = el("details", "group");
    answer.append(el("summary", "", a.answer.slice(0, 80) + (a.answer.length > 80 ? "…" : "")), el("p", "", a.answer));
    return [a.question, answer, a.comments.join(" · ") || "—", a.sources.join("; ") || "—"];
  }));
}

function pages(rows) {
  return table(["Document", "Page", "Shown in answers", "Cited"],
               rows.map((p) => [p.file, p.page ?? "—", p.shown, p.cited]));
}
