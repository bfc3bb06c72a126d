// Course materials: what is ingested (pages, chunks), upload with progress, delete.

import { api, documentUrl, followJob, uploadDocument } from "./api.js";
import { icon } from "./icons.js";

export class MaterialsDialog {
  constructor({ dialog, openButton, closeButton, input, dropzone, readOnlyNote, uploads, body, summary, onChanged,
                isInstructor }) {
    Object.assign(this, { dialog, input, dropzone, readOnlyNote, uploads, body, summary, onChanged, isInstructor });
    openButton.addEventListener("click", () => this.open());
    closeButton.addEventListener("click", () => dialog.close());
    dialog.addEventListener("click", (event) => event.target === dialog && dialog.close());
    input.addEventListener("change", () => {
      this.uploadAll([...input.files]);
      input.value = "";
    });
    dropzone.addEventListener("dragover", (event) => {
      event.preventDefault();
      dropzone.classList.add("dragging");
    });
    dropzone.addEventListener("dragleave", () => dropzone.classList.remove("dragging"));
    dropzone.addEventListener("drop", (event) => {
      event.preventDefault();
      dropzone.classList.remove("dragging");
      this.uploadAll([...event.dataTransfer.files]);
    });
  }

  async open() {
    if (!this.dialog.open) this.dialog.showModal();
    await this.refresh();
  }

  async refresh() {
    const instructor = this.isInstructor();
    this.dropzone.hidden = !instructor;  // the server refuses students anyway; this says so first
    this.readOnlyNote.hidden = instructor;
    let documents;
    try {
      documents = await api.documents();
    } catch (error) {
      this.summary.textContent = `${error.title}: ${error.message}`;
      return;
    }
    this.body.replaceChildren(...documents.map((doc) => this.row(doc)));
    if (instructor) {
      // Files in the folder that could not be read, with why: they wait for a fixed copy.
      const failed = await api.failedDocuments().catch(() => []);
      this.body.append(...failed.map((f) => failedRow(f)));
    }
    const pages = documents.reduce((n, d) => n + (d.pages || 0), 0);
    const chunks = documents.reduce((n, d) => n + (d.chunks || 0), 0);
    this.summary.textContent = documents.length
      ? `${plural(documents.length, "document")}, ${plural(pages, "PDF page")}, ${plural(chunks, "chunk")} indexed.`
      : "Nothing is ingested yet. Add documents above, or put files in course_materials/ and run the ingest.";
  }

  row(doc) {
    const tr = document.createElement("tr");
    tr.dataset.file = doc.file;
    const name = document.createElement("td");
    name.className = "name";
    const link = document.createElement("a");
    link.href = documentUrl(doc.file);
    link.target = "_blank";
    link.rel = "noopener";
    link.textContent = doc.file;
    name.append(link);
    if (doc.warnings?.length) {
      const warn = document.createElement("div");
      warn.className = "muted";
      warn.textContent = doc.warnings.join("; ");
      name.append(warn);
    }
    const added = doc.ingested_at ? new Date(doc.ingested_at * 1000).toLocaleString() : "";
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "icon-button delete";
    remove.setAttribute("aria-label", `Delete ${doc.file}`);
    remove.append(icon("trash"));
    remove.addEventListener("click", () => this.remove(doc, remove));
    const actions = document.createElement("td");
    if (this.isInstructor()) actions.append(remove);
    // Markdown, HTML and Word files have sections, not pages.
    tr.append(name, cell(doc.pages || "–", "num"), cell(doc.chunks, "num"), cell(added), actions);
    return tr;
  }

  /** Deleting removes the document's chunks and its file: ask once more first. */
  async remove(doc, button) {
    if (!button.classList.contains("armed")) {
      button.classList.add("armed", "button", "small", "danger");
      button.replaceChildren("Delete?");
      return;
    }
    button.disabled = true;
    try {
      const queued = await api.removeDocument(doc.file);  // null (204): done; a job (202): queued
      if (queued && queued.state) {
        this.summary.textContent = `Deleting ${doc.file} once the ingest in progress is done…`;
        const job = await followJob(queued, () => {});
        if (job.state === "failed") throw new Error(job.message);
      }
    } catch (error) {
      this.summary.textContent = `${error.title || "Not deleted"}: ${error.message}`;
    }
    await this.refresh();
    this.onChanged?.();
  }

  async uploadAll(files) {
    for (const file of files) await this.upload(file);  // one at a time: ingest is serial anyway
    await this.refresh();
    this.onChanged?.();
  }

  async upload(file, { replace = false } = {}) {
    const item = document.createElement("li");
    item.className = "upload";
    const name = document.createElement("span");
    name.textContent = file.name;
    const state = document.createElement("span");
    state.className = "state";
    state.textContent = "Uploading…";
    const bar = document.createElement("progress");
    bar.max = 1;
    bar.value = 0;
    item.append(name, state, bar);
    this.uploads.prepend(item);
    try {
      const result = await uploadDocument(file, (fraction) => {
        bar.value = fraction;
        state.textContent = fraction < 1 ? `Uploading… ${Math.round(fraction * 100)}%` : "Queued for reading…";
        if (fraction >= 1) bar.removeAttribute("value");  // indeterminate until the ingest reports
      }, { replace });
      // 202: stored and queued; the ingest runs in the background and reports its progress.
      const job = result.state ? await followJob(result, (j) => this.showJob(j, state, bar)) : result.job;
      if (job && job.state === "failed") throw new Error(job.message);
      const doc = (job && job.document) || result.document || {};
      item.classList.add("done");
      bar.value = 1;
      const pages = doc.pages ? ` from ${plural(doc.pages, "page")}` : "";
      state.textContent = `Ready to ask about: ${plural(doc.chunks ?? 0, "chunk")}${pages}`;
    } catch (error) {
      item.classList.add("failed");
      bar.remove();
      state.textContent = error.message;
      if (error.status === 409 && /already exists/.test(error.message)) {
        const again = document.createElement("button");
        again.type = "button";
        again.className = "button small";
        again.textContent = "Replace it";
        again.addEventListener("click", async () => {
          item.remove();
          await this.upload(file, { replace: true });
          await this.refresh();
          this.onChanged?.();
        });
        item.append(again);
      }
    }
  }

  /** A queued or running ingest, in words and on the bar. */
  showJob(job, state, bar) {
    const p = job.progress || {};
    if (job.state === "queued") {
      state.textContent = job.position > 1 ? `Queued: ${job.position - 1} ahead of it…` : job.message;
      bar.removeAttribute("value");
    } else if (job.state === "running" && p.pages_total) {
      bar.value = Math.min(1, p.pages_done / p.pages_total);
      const chunks = p.chunks_done ? `, ${plural(p.chunks_done, "chunk")}` : "";
      const eta = p.eta_s != null ? `, about ${duration(p.eta_s)} left` : "";
      const failed = (p.failed || []).map((f) => `${f.file} failed: ${f.reason}`).join("; ");
      state.textContent = `${job.message} ${p.pages_done} of ${plural(p.pages_total, "page")}${chunks}${eta}` +
        (failed ? `. ${failed}` : "");
    } else {
      state.textContent = job.message;
    }
  }
}

function failedRow(failure) {
  const tr = document.createElement("tr");
  tr.className = "failed";
  tr.dataset.file = failure.file;
  const name = cell(failure.file, "name");
  const why = document.createElement("div");
  why.className = "muted";
  why.textContent = `Not ingested: ${failure.reason}`;
  name.append(why);
  tr.append(name, cell("–", "num"), cell("–", "num"), cell(""), cell(""));
  return tr;
}

function cell(text, className) {
  const td = document.createElement("td");
  if (className) td.className = className;
  td.textContent = String(text ?? "");
  return td;
}

function duration(seconds) {
  return seconds < 60 ? `${Math.max(1, Math.round(seconds))} s` : `${Math.round(seconds / 60)} min`;
}

function plural(n, word) {
  return `${n.toLocaleString()} ${word}${n === 1 ? "" : "s"}`;
}
