// The conversation on screen: open a stored one, ask, stream, stop, regenerate, retry.

import { api, streamChat } from "./api.js";
import { currentCourse } from "./course.js";
import { AssistantTurn, userBubble } from "./turn.js";

export class ChatView {
  constructor({ messages, empty, form, input, send, stop, title, onStarted, onChanged, onError, onCourse }) {
    Object.assign(this, { messages, empty, form, input, send, stop, title, onStarted, onChanged, onError, onCourse });
    this.conversationId = null;
    this.controller = null;
    this.loadToken = 0;

    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.submit();
      } else if (event.key === "Escape" && this.busy) {
        this.stopGenerating();
      }
    });
    input.addEventListener("input", () => this.autosize());
    stop.addEventListener("click", () => this.stopGenerating());
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && this.busy) this.stopGenerating();
    });
  }

  get busy() {
    return this.controller !== null;
  }

  autosize() {
    this.input.style.height = "auto";
    this.input.style.height = `${Math.min(this.input.scrollHeight, window.innerHeight * 0.4)}px`;
  }

  setBusy(busy) {
    this.send.hidden = busy;
    this.stop.hidden = !busy;
    if (!busy) this.controller = null;
  }

  showEmpty(show) {
    this.empty.hidden = !show;
  }

  /** Start a fresh conversation (its id comes from the server with the first answer). */
  newChat() {
    if (this.busy) this.stopGenerating();
    this.loadToken++;
    this.conversationId = null;
    this.messages.replaceChildren(this.empty);
    this.showEmpty(true);
    this.title.textContent = "New chat";
    this.input.focus();
  }

  /** Show a stored conversation from the server. */
  async open(id) {
    if (this.busy) this.stopGenerating();
    const token = ++this.loadToken;
    const conversation = await api.conversation(id);
    if (token !== this.loadToken) return;  // another click won
    this.onCourse?.(conversation.course);
    this.conversationId = conversation.id;
    this.title.textContent = conversation.title || "Conversation";
    this.messages.replaceChildren(this.empty);
    this.showEmpty(conversation.messages.length === 0);
    for (const message of conversation.messages) {
      if (message.role === "user") {
        this.messages.append(userBubble(message.content));
      } else {
        const turn = this.newTurn();
        // `feedback` is there (null or a vote) only where this browser asked: it may rate
        turn.finish({ answer: message.content, ...message.meta, message_id: message.id,
                      conversation_id: conversation.id, feedback: message.feedback });
        this.messages.append(turn.article);
      }
    }
    this.scrollToEnd(true);
  }

  newTurn() {
    return new AssistantTurn({ onRegenerate: (turn) => this.regenerate(turn) });
  }

  submit() {
    const question = this.input.value.trim();
    if (!question || this.busy) return;
    this.input.value = "";
    this.autosize();
    this.ask(question);
  }

  /** Ask `question`; with `replace`, the given turn is answered again in place. */
  async ask(question, replace = null) {
    this.showEmpty(false);
    let bubble = null;
    const turn = this.newTurn();
    if (replace) {
      replace.article.replaceWith(turn.article);
    } else {
      bubble = userBubble(question);
      this.messages.append(bubble, turn.article);
    }
    this.scrollToEnd(true);
    this.controller = new AbortController();
    this.setBusy(true);
    const body = { message: question, regenerate: Boolean(replace) };
    if (this.conversationId) body.conversation_id = this.conversationId;
    else if (currentCourse()) body.course = currentCourse();
    const isNew = !this.conversationId;
    try {
      await streamChat(body, {
        queued: (data) => turn.setWaiting(data.message),
        sources: (data) => {
          this.conversationId = data.conversation_id;
          if (isNew) this.onStarted?.(data.conversation_id);  // in the URL at once: a reload finds it
          turn.setSources(data.sources);
        },
        token: (data) => {
          turn.appendText(data.delta);
          this.scrollToEnd(false);
        },
        // rated only where the instructor's insight is on (RAG_INSIGHT)
        done: (data) => turn.finish(document.body.dataset.insight === "off" ? data : { feedback: null, ...data }),
      }, this.controller.signal);
    } catch (error) {
      if (error.name === "AbortError") {
        turn.stopped();
      } else {
        turn.fail(error, () => {
          if (this.input.value.trim() === question) this.input.value = "";
          bubble?.remove();
          if (replace) this.ask(question, turn);
          else {
            turn.article.remove();
            this.ask(question);
          }
        });
        if (!this.input.value.trim()) this.input.value = question;  // nothing typed is lost
        this.onError?.(error);
      }
    } finally {
      this.setBusy(false);
      this.scrollToEnd(false);
    }
    if (this.conversationId) this.onChanged?.(this.conversationId, isNew);
  }

  regenerate(turn) {
    if (this.busy) return;
    const question = turn.article.previousElementSibling?.querySelector(".bubble")?.textContent;
    if (question) this.ask(question, turn);
  }

  stopGenerating() {
    this.controller?.abort();
  }

  /** Follow the answer as it grows, unless the reader has scrolled up to read. */
  scrollToEnd(force) {
    const box = this.messages;
    const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 120;
    if (force || nearBottom) box.scrollTop = box.scrollHeight;
  }
}
