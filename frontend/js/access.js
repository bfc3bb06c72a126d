// Who this browser is to the appliance: a student, or the instructor once unlocked with
// the key. The key and the access code go to the server once; what proves them afterwards
// is an HttpOnly cookie the server sets, which no script here can read.

import { ApiError, request } from "./api.js";

export class AccessPanel {
  constructor({ button, dialog, form, keyInput, error, cancel, codeDialog, codeForm, codeInput, codeError,
                onChange }) {
    Object.assign(this, { button, dialog, form, keyInput, error, codeDialog, codeForm, codeInput, codeError,
                          onChange });
    this.role = "student";
    this.studentAccess = "open";
    this.insight = true;
    button.addEventListener("click", () => (this.isInstructor ? this.lock() : this.openUnlock()));
    cancel.addEventListener("click", () => dialog.close());
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.unlock(keyInput.value.trim());
    });
    codeForm.addEventListener("submit", (event) => {
      event.preventDefault();
      this.enterCode(codeInput.value.trim());
    });
    // The code is needed to use the page at all: it cannot be dismissed.
    codeDialog.addEventListener("cancel", (event) => event.preventDefault());
  }

  get isInstructor() {
    return this.role === "instructor";
  }

  /** Ask the server who we are; shows the code prompt when the course needs one. */
  async refresh() {
    try {
      const me = await request("GET", "api/access");
      this.role = me.role;
      this.studentAccess = me.student_access;
      this.insight = me.insight !== false;
      // ratings and the review note only where the instructor's insight is collected
      document.body.dataset.insight = this.insight ? "on" : "off";
    } catch {
      this.role = "student";
    }
    this.render();
    if (this.role === "locked" && !this.codeDialog.open) this.codeDialog.showModal();
    return this.role;
  }

  render() {
    this.button.textContent = this.isInstructor ? "Instructor mode · Lock" : "Instructor";
    this.button.classList.toggle("unlocked", this.isInstructor);
    this.button.title = this.isInstructor
      ? "Uploads, deletes and every conversation are unlocked in this browser. Click to lock."
      : "Unlock instructor mode with the instructor key";
  }

  openUnlock() {
    this.error.textContent = "";
    this.keyInput.value = "";
    this.dialog.showModal();
    this.keyInput.focus();
  }

  async unlock(key) {
    if (!key) return;
    try {
      await request("POST", "api/access/instructor", { key });
    } catch (error) {
      this.error.textContent = error instanceof ApiError && error.status === 429
        ? error.message
        : error.status === 401 ? "That key is not right." : error.message;
      return;
    }
    this.keyInput.value = "";
    this.dialog.close();
    await this.refresh();
    this.onChange?.(this.role);
  }

  async lock() {
    try {
      await request("DELETE", "api/access/instructor");
    } finally {
      await this.refresh();
      this.onChange?.(this.role);
    }
  }

  async enterCode(code) {
    if (!code) return;
    try {
      await request("POST", "api/access/code", { code });
    } catch (error) {
      this.codeError.textContent = error.status === 401 ? "That code is not right. Check it and try again."
        : error.message;
      return;
    }
    this.codeInput.value = "";
    this.codeDialog.close();
    await this.refresh();
    this.onChange?.(this.role);
  }
}
