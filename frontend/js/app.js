// Wires the page together. The open conversation lives in the URL (#c=<id>), so a
// reload, a bookmark or the back button returns to it.

import { ChatView } from "./chat.js";
import { MaterialsDialog } from "./materials.js";
import { ConversationList } from "./sidebar.js";
import { StatusPanel, modelName } from "./status.js";

const $ = (id) => document.getElementById(id);

function currentHashId() {
  const match = location.hash.match(/^#c=(.+)$/);
  return match ? decodeURIComponent(match[1]) : null;
}

function setHash(id) {
  const hash = id ? `#c=${encodeURIComponent(id)}` : "";
  if (location.hash !== hash) history.pushState(null, "", hash || location.pathname);
}

function start() {
  const app = $("app");
  const closeSidebar = () => {
    app.classList.remove("sidebar-open");
    $("scrim").hidden = true;
  };
  $("open-sidebar").addEventListener("click", () => {
    app.classList.add("sidebar-open");
    $("scrim").hidden = false;
  });
  $("close-sidebar").addEventListener("click", closeSidebar);
  $("scrim").addEventListener("click", closeSidebar);

  const status = new StatusPanel($("status-card"), $("status-pill"), {
    onChange: (state, report) => {
      $("empty-detail").textContent = state === "ready" && report
        ? `${report.chunks.toLocaleString()} chunks indexed · model ${modelName(report.llm_model)}`
        : "";
    },
  });

  const chat = new ChatView({
    messages: $("messages"), empty: $("empty-state"), form: $("composer"), input: $("prompt"),
    send: $("send"), stop: $("stop"), title: $("chat-title"),
    onStarted: (id) => setHash(id),
    onChanged: async (id) => {
      setHash(id);
      await list.refresh();
      list.setActive(id);
      const item = list.items.find((c) => c.id === id);
      if (item) $("chat-title").textContent = item.title;
    },
    onError: () => status.poll(),
  });

  const openConversation = async (id) => {
    closeSidebar();
    try {
      await chat.open(id);
      setHash(id);
      list.setActive(id);
    } catch (error) {
      // A deleted or unknown conversation in the URL: start fresh instead.
      setHash(null);
      chat.newChat();
      list.setActive(null);
    }
  };

  const list = new ConversationList($("conversation-list"), {
    onOpen: openConversation,
    onDeleted: (id) => {
      if (chat.conversationId === id) {
        setHash(null);
        chat.newChat();
      }
    },
    onError: () => status.poll(),
  });
  list.onRenamed = (id, title) => {
    if (chat.conversationId === id && title) $("chat-title").textContent = title;
  };

  $("new-chat").addEventListener("click", () => {
    closeSidebar();
    setHash(null);
    chat.newChat();
    list.setActive(null);
  });

  new MaterialsDialog({
    dialog: $("materials-dialog"), openButton: $("open-materials"), closeButton: $("close-materials"),
    input: $("upload-input"), dropzone: $("dropzone"), uploads: $("uploads"),
    body: $("documents-body"), summary: $("documents-summary"),
    onChanged: () => status.poll(),
  });

  // Back/forward, a bookmark or an edited URL: show the conversation it names.
  window.addEventListener("hashchange", () => {
    const id = currentHashId();
    if (id === chat.conversationId) return;
    if (id) openConversation(id);
    else chat.newChat();
  });

  status.start();
  list.refresh().then(() => {
    const id = currentHashId();
    if (id) openConversation(id);
  });
  $("prompt").focus();
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
