// The course this page asks about. One appliance may hold several courses; the picker
// shows when it does. The choice is kept in this browser (it is not a secret).

const KEY = "course";
let current = localStorage.getItem(KEY) || null;

export function currentCourse() {
  return current;
}

export function setCourse(name) {
  current = name || null;
  if (current) localStorage.setItem(KEY, current);
  else localStorage.removeItem(KEY);
}

/** `path` with the current course as a query parameter (nothing when none is chosen). */
export function withCourse(path) {
  if (!current) return path;
  return `${path}${path.includes("?") ? "&" : "?"}course=${encodeURIComponent(current)}`;
}

export class CoursePicker {
  constructor(select, { onChange }) {
    Object.assign(this, { select, onChange });
    select.addEventListener("change", () => {
      setCourse(select.value);
      onChange?.(select.value);
    });
  }

  /** Fill the picker from the server; hidden when there is only one course. */
  render(courses) {
    const names = courses.map((c) => c.name);
    if (!names.includes(current)) setCourse((courses.find((c) => c.default) || courses[0])?.name);
    this.select.replaceChildren(...courses.map((c) => {
      const option = document.createElement("option");
      option.value = c.name;
      option.textContent = `${c.name} (${c.documents} document${c.documents === 1 ? "" : "s"})`;
      option.selected = c.name === current;
      return option;
    }));
    this.select.closest("label").hidden = courses.length < 2;
  }

  /** Show `name` as chosen (a conversation of another course was opened). */
  show(name) {
    if (!name || name === current) return;
    setCourse(name);
    this.select.value = name;
    this.onChange?.(name, { keepConversation: true });
  }
}
