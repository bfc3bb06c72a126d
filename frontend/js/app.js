// Wires the page together. The open conversation lives in the URL (#c=<id>), so a
// reload, a bookmark or the back button returns to it.

import { AccessPanel } from "./access.js";
import { ChatView } from "./chat.js";
import { CoursePicker } from "./course.js";
import { InsightDialog } from "./insight.js";
import { MaterialsDialog } from "./materials.js";
import { ConversationList } from "./sidebar.js";
import { StatusPanel, modelName } from "./status.js";
import { api } from "./api.js";

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
    onCourse: (name) => picker.show(name),
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

  const access = new AccessPanel({
    button: $("instructor-button"), dialog: $("instructor-dialog"), form: $("instructor-form"),
    keyInput: $("instructor-key"), error: $("instructor-error"), cancel: $("instructor-cancel"),
    codeDialog: $("code-dialog"), codeForm: $("code-form"), codeInput: $("access-code"), codeError: $("code-error"),
    onChange: (role) => {
      $("all-toggle").hidden = role !== "instructor";
      $("open-insight").hidden = role !== "instructor" || !access.insight;
      if (role !== "instructor") $("show-all").checked = list.showAll = false;
      loadCourses().then(() => list.refresh());
      if (materials.dialog.open) materials.refresh();
    },
  });
  const picker = new CoursePicker($("course-picker"), {
    onChange: (name, { keepConversation } = {}) => {
      if (!keepConversation) {
        setHash(null);
        chat.newChat();
      }
      list.refresh();
      if (materials.dialog.open) materials.refresh();
    },
  });
  const loadCourses = () => api.courses().then((courses) => picker.render(courses)).catch(() => {});

  $("show-all").addEventListener("change", () => {
    list.showAll = $("show-all").checked;
    list.refresh();
  });

  const materials = new MaterialsDialog({
    dialog: $("materials-dialog"), openButton: $("open-materials"), closeButton: $("close-materials"),
    input: $("upload-input"), dropzone: $("dropzone"), readOnlyNote: $("read-only-note"), uploads: $("uploads"),
    body: $("documents-body"), summary: $("documents-summary"),
    onChanged: () => status.poll(),
    isInstructor: () => access.isInstructor,
  });

  // Back/forward, a bookmark or an edited URL: show the conversation it names.
  window.addEventListener("hashchange", () => {
    const id = currentHashId();
    if (id === chat.conversationId) return;
    if (id) openConversation(id);
    else chat.newChat();
  });

  status.start();
  new InsightDialog({
    dialog: $("insight-dialog"), openButton: $("open-insight"), closeButton: $("close-insight"),
    form: $("insight-form"), since: $("insight-since"), until: $("insight-until"), body: $("insight-body"),
  });

  access.refresh().then(async (role) => {
    $("all-toggle").hidden = role !== "instructor";
    $("open-insight").hidden = role !== "instructor" || !access.insight;
    if (role !== "locked") await loadCourses();
    return list.refresh();
  }).then(() => {
    const id = currentHashId();
    if (id) openConversation(id);
  });
  $("prompt").focus();
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
