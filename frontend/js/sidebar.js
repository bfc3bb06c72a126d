// The conversation list: the server's conversations, newest first; open, rename, delete.

import { api } from "./api.js";
import { icon } from "./icons.js";

export class ConversationList {
  constructor(container, { onOpen, onDeleted, onError }) {
    Object.assign(this, { container, onOpen, onDeleted, onError });
    this.activeId = null;
    this.items = [];
    this.showAll = false;  // the instructor's view of every student's conversations
  }

  async refresh() {
    try {
      this.items = await api.conversations(this.showAll);
    } catch (error) {
      this.onError?.(error);
      return;
    }
    this.render();
  }

  setActive(id) {
    this.activeId = id;
    for (const row of this.container.querySelectorAll(".conversation")) {
      row.classList.toggle("active", row.dataset.id === id);
      row.querySelector(".open").setAttribute("aria-current", row.dataset.id === id ? "page" : "false");
    }
  }

  render() {
    this.container.replaceChildren();
    if (!this.items.length) {
      const empty = document.createElement("p");
      empty.className = "list-empty";
      empty.textContent = "No conversations yet.";
      this.container.append(empty);
      return;
    }
    for (const conversation of this.items) this.container.append(this.row(conversation));
    this.setActive(this.activeId);
  }

  row(conversation) {
    const row = document.createElement("div");
    row.className = "conversation";
    row.dataset.id = conversation.id;
    const label = conversation.title || "Untitled";
    const open = button("open", label, () => this.onOpen(conversation.id));
    open.title = label;
    if (conversation.student && !conversation.mine) {
      // The instructor's view of everyone's: a pseudonym, never who the student is.
      const who = document.createElement("span");
      who.className = "who";
      who.textContent = `student ${conversation.student}`;
      open.append(who);
      open.title = `${label} (student ${conversation.student})`;
    }
    const tools = document.createElement("div");
    tools.className = "tools";
    const rename = button("icon-button rename", icon("pencil"), () => this.startRename(row, conversation));
    rename.setAttribute("aria-label", `Rename “${conversation.title}”`);
    const remove = button("icon-button delete", icon("trash"), () => this.confirmDelete(remove, conversation));
    remove.setAttribute("aria-label", `Delete “${conversation.title}”`);
    tools.append(rename, remove);
    row.append(open, tools);
    return row;
  }

  startRename(row, conversation) {
    const input = document.createElement("input");
    input.value = conversation.title;
    input.setAttribute("aria-label", "New title");
    input.maxLength = 200;
    const done = async (save) => {
      if (input.dataset.done) return;
      input.dataset.done = "1";
      const title = input.value.trim();
      if (save && title && title !== conversation.title) {
        try {
          await api.rename(conversation.id, title);
        } catch (error) {
          this.onError?.(error);
        }
      }
      await this.refresh();
      if (save) this.onRenamed?.(conversation.id, title);
    };
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter") done(true);
      if (event.key === "Escape") done(false);
    });
    input.addEventListener("blur", () => done(true));
    row.replaceChildren(input);
    input.focus();
    input.select();
  }

  /** First click arms the button ("Delete?"), a second within 4 s deletes. */
  confirmDelete(remove, conversation) {
    if (!remove.classList.contains("confirm")) {
      remove.classList.add("confirm");
      remove.textContent = "Delete?";
      setTimeout(() => {
        remove.classList.remove("confirm");
        remove.replaceChildren(icon("trash"));
      }, 4000);
      return;
    }
    api.remove(conversation.id)
      .then(() => this.onDeleted(conversation.id))
      .catch((error) => this.onError?.(error))
      .finally(() => this.refresh());
  }
}

function button(className, content, onClick) {
  const node = document.createElement("button");
  node.type = "button";
  node.className = className;
  node.append(content);
  node.addEventListener("click", onClick);
  return node;
}
