// Talking to the backend: JSON calls, the SSE chat stream, uploads with progress.
// Paths are relative ("api/..."), so the page also works behind a proxy prefix.

import { withCourse } from "./course.js";

/** An error a person can act on: `title` and `message` are shown as they are. */
export class ApiError extends Error {
  constructor(title, message, status = 0) {
    super(message);
    this.title = title;
    this.status = status;
  }
}

const UNREACHABLE = new ApiError(
  "Can't reach the assistant",
  "The backend is not answering. Check that the appliance is running " +
    "(./runpod_simple_startup.sh status) and try again.",
);

function errorFor(status, detail) {
  if (status === 401 || status === 403) {
    return new ApiError("Not allowed", detail || "You are not allowed to do this.", status);
  }
  if (status === 429) return new ApiError("Busy right now", detail || "Too many requests: try again in a moment.", status);
  if (status === 503) return new ApiError("The assistant is not ready", detail || "A service it needs is down.", status);
  if (status === 413 || status === 415 || status === 422 || status === 400 || status === 404 || status === 409) {
    return new ApiError("Request refused", detail || `Refused (${status}).`, status);
  }
  if (status === 502 || status === 504) return UNREACHABLE;  // a proxy in front, backend gone
  return new ApiError("Something went wrong", detail || `The backend answered ${status}.`, status);
}

async function detailOf(response) {
  try {
    const body = await response.json();
    return typeof body.detail === "string" ? body.detail : null;
  } catch {
    return null;
  }
}

/** JSON request; throws ApiError with a readable message on any failure. */
export async function request(method, path, body) {
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: body === undefined ? {} : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw UNREACHABLE;
  }
  if (!response.ok) throw errorFor(response.status, await detailOf(response));
  return response.status === 204 ? null : response.json();
}

export const api = {
  ready: () => fetch("api/ready").then(async (r) => ({ ok: r.ok, body: await r.json() })),
  conversations: (all = false) => request("GET", withCourse(`api/conversations${all ? "?all=true" : ""}`)),
  courses: () => request("GET", "api/courses"),
  conversation: (id) => request("GET", `api/conversations/${encodeURIComponent(id)}`),
  rename: (id, title) => request("PATCH", `api/conversations/${encodeURIComponent(id)}`, { title }),
  remove: (id) => request("DELETE", `api/conversations/${encodeURIComponent(id)}`),
  /** A vote ("up" or "down", with an optional comment) on an answer; null takes it back. */
  rate: (id, messageId, vote, comment = "") => {
    const path = `api/conversations/${encodeURIComponent(id)}/messages/${messageId}/feedback`;
    return vote ? request("PUT", path, { vote, comment }) : request("DELETE", path);
  },
  documents: () => request("GET", withCourse("api/documents")),
  insight: (query) => request("GET", withCourse(`api/insight${query ? "?" + query : ""}`)),
  failedDocuments: () => request("GET", withCourse("api/documents/failed")),
  removeDocument: (file) => request("DELETE", withCourse(`api/documents/${encodePath(file)}`)),
};

export function encodePath(file) {
  return file.split("/").map(encodeURIComponent).join("/");
}

/** The URL of a document's original file, at a page where the browser can open one. */
export function documentUrl(file, page) {
  const url = withCourse(`api/documents/file/${encodePath(file)}`);
  return page && /\.pdf$/i.test(file) ? `${url}#page=${page}` : url;
}

/**
 * Stream one chat turn. Calls handlers.sources / token / done as events arrive and
 * resolves when the stream ends; rejects with ApiError (or AbortError when stopped).
 */
export async function streamChat(body, handlers, signal) {
  let response;
  try {
    response = await fetch("api/chat/stream", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
      body: JSON.stringify(body),
      signal,
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw UNREACHABLE;
  }
  if (!response.ok) throw errorFor(response.status, await detailOf(response));

  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let finished = false;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value.replace(/\r\n?/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = parseEvent(block);
        if (!event) continue;
        if (event.name === "error") {
          throw errorFor(event.data.status || 503, event.data.message);
        }
        if (event.name === "done") finished = true;
        handlers[event.name]?.(event.data);
      }
    }
  } catch (error) {
    if (error instanceof ApiError || error.name === "AbortError") throw error;
    throw UNREACHABLE;  // the connection broke mid-answer
  } finally {
    reader.releaseLock();
  }
  if (!finished) throw new ApiError("The answer was cut off", "The connection closed before the answer was complete. Try again.");
}

function parseEvent(block) {
  let name = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) continue;  // keep-alive comment
    if (line.startsWith("event:")) name = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
  }
  if (!data.length) return null;
  return { name, data: JSON.parse(data.join("\n")) };
}

/** Upload one file with progress (fetch cannot report upload progress; XHR can). Resolves
 * with the server's answer: 202 and a queued ingest job, or 201 and the document. */
export function uploadDocument(file, onProgress, { replace = false } = {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", withCourse(`api/documents${replace ? "?replace=true" : ""}`));
    xhr.responseType = "json";
    xhr.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded / e.total);
    xhr.upload.onload = () => onProgress(1);
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) resolve(xhr.response);
      else reject(errorFor(xhr.status, xhr.response && xhr.response.detail));
    };
    xhr.onerror = () => reject(UNREACHABLE);
    const form = new FormData();
    form.append("file", file);
    xhr.send(form);
  });
}

/** Follow an ingest job until it is over, calling onUpdate with each state; resolves
 * with the finished job (state "done" or "failed"). */
export async function followJob(job, onUpdate, intervalMs = 1000) {
  onUpdate(job);
  if (job.state === "queued" || job.state === "running") {
    // The ingest's progress as it happens (server-sent events); polled where a proxy cuts them.
    job = await streamJob(job, onUpdate).catch(() => pollJob(job, onUpdate, intervalMs));
  }
  onUpdate(job);
  return job;
}

function jobUrl(job, suffix = "") {
  return withCourse(`api/documents/jobs/${encodeURIComponent(job.id)}${suffix}`);
}

function streamJob(job, onUpdate) {
  return new Promise((resolve, reject) => {
    const source = new EventSource(jobUrl(job, "/events"));
    source.addEventListener("job", (event) => {
      const latest = JSON.parse(event.data);
      onUpdate(latest);
      if (latest.state === "done" || latest.state === "failed") {
        source.close();
        resolve(latest);
      }
    });
    source.onerror = () => {
      source.close();
      reject(new Error("progress stream closed"));
    };
  });
}

async function pollJob(job, onUpdate, intervalMs) {
  while (job.state === "queued" || job.state === "running") {
    onUpdate(job);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
    job = await request("GET", jobUrl(job));
  }
  return job;
}
