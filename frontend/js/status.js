// The appliance's status at a glance: model, where it runs, chunks indexed.
// Polled from /api/ready; faster while something is down, so recovery shows soon.

import { api } from "./api.js";

export class StatusPanel {
  constructor(card, pill, { onChange } = {}) {
    Object.assign(this, { card, pill, onChange });
    this.state = "unknown";
    this.report = null;
    this.timer = null;
  }

  start() {
    this.poll();
  }

  async poll() {
    clearTimeout(this.timer);
    let state = "down";
    let report = null;
    try {
      const { ok, body } = await api.ready();
      report = body;
      state = ok ? "ready" : "degraded";
    } catch {
      report = null;
    }
    this.state = state;
    this.report = report;
    this.render();
    this.onChange?.(state, report);
    this.timer = setTimeout(() => this.poll(), state === "ready" ? 20000 : 5000);
  }

  render() {
    const r = this.report;
    const rows = [];
    const dot = document.createElement("span");
    dot.className = "status-dot";
    dot.dataset.state = this.state;
    const headline = {
      ready: "Ready",
      degraded: "Not ready",
      down: "Backend unreachable",
    }[this.state];
    const head = document.createElement("strong");
    head.textContent = headline;
    rows.push(dot, head);
    if (r) {
      const model = r.llm_model ? modelName(r.llm_model) : "no model answering";
      rows.push(...line("Model", model));
      rows.push(...line("Runs on", r.llm_device || "unknown"));
      rows.push(...line("Indexed", r.chunks == null ? "?" : `${r.chunks.toLocaleString()} chunks`));
      rows.push(...line("Embedder", `${r.embedding_model} (${r.embedding_device})`));
      if (r.retrieval) {
        rows.push(...line("Search", `${r.retrieval}, ${r.reranker ? `reranked by ${r.reranker.split("/").pop()}` : "no reranker"}`));
      }
      for (const problem of r.problems || []) {
        const p = document.createElement("span");
        p.className = "problem";
        p.textContent = problem;
        rows.push(p);
      }
    } else {
      const p = document.createElement("span");
      p.className = "problem";
      p.textContent = "The backend is not answering. Is the appliance running?";
      rows.push(p);
    }
    this.card.replaceChildren(...rows);
    this.card.dataset.state = this.state;

    this.pill.dataset.state = this.state;
    const device = r?.llm_device ? (r.llm_device.startsWith("GPU") ? "GPU" : "CPU") : "";
    this.pill.textContent = this.state === "ready"
      ? [r.llm_model && modelName(r.llm_model), device].filter(Boolean).join(" · ")
      : headline;
    this.pill.title = r?.llm_device || headline;
  }
}

/** "…/SmolLM2-135M-Instruct.Q4_K_M.gguf" -> "SmolLM2-135M-Instruct.Q4_K_M" */
export function modelName(id) {
  return String(id).split(/[\\/]/).pop().replace(/\.gguf$/i, "");
}

function line(label, value) {
  const l = document.createElement("span");
  l.className = "label";
  l.textContent = label;
  const v = document.createElement("span");
  v.className = "line";
  v.textContent = value;
  v.title = value;
  return [l, v];
}
