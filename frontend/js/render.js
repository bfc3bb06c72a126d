// Safe rendering of model output: Markdown -> HTML -> DOMPurify -> the page.
//
// Why this order: the model and the documents it quotes can contain HTML and script;
// marked turns Markdown into HTML without judging it, DOMPurify then removes anything
// executable (script, event handlers, javascript: URLs), and only after that do we add
// our own elements (citation links, highlighted code) through DOM calls, never strings.

const PURIFY_CONFIG = {
  USE_PROFILES: { html: true },
  FORBID_TAGS: ["style", "form", "input", "button", "textarea", "select", "iframe", "object", "embed", "img", "svg", "math"],
  FORBID_ATTR: ["style", "id", "class"],
};

const CITATION = /\[(\d{1,2}(?:\s*[,;]\s*\d{1,2})*)\]/g;

let configured = false;
function configure() {
  if (configured) return;
  configured = true;
  window.marked.setOptions({ gfm: true, breaks: false });
  // Links from the model open in a new tab and never get the page's context.
  window.DOMPurify.addHook("afterSanitizeAttributes", (node) => {
    if (node.tagName === "A") {
      node.setAttribute("target", "_blank");
      node.setAttribute("rel", "noopener noreferrer nofollow");
    }
  });
}

/** Markdown to a sanitised DocumentFragment (nothing in it can run). */
export function renderMarkdown(markdown) {
  configure();
  const html = window.marked.parse(markdown ?? "", { async: false });
  return window.DOMPurify.sanitize(html, { ...PURIFY_CONFIG, RETURN_DOM_FRAGMENT: true });
}

/**
 * Fill `container` with the rendered answer: citations [n] become links to source n
 * (only for n that exists), code blocks are highlighted.
 */
export function renderAnswer(container, markdown, sourceCount, onCite) {
  const fragment = renderMarkdown(markdown);
  linkCitations(fragment, sourceCount, onCite);
  container.replaceChildren(fragment);
  for (const block of container.querySelectorAll("pre code")) {
    if (window.hljs) window.hljs.highlightElement(block);  // works on text, escapes it again
  }
}

function linkCitations(root, sourceCount, onCite) {
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT, {
    acceptNode: (node) => (node.parentElement?.closest("code, pre, a") ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT),
  });
  const texts = [];
  while (walker.nextNode()) texts.push(walker.currentNode);
  for (const node of texts) {
    const text = node.nodeValue;
    CITATION.lastIndex = 0;
    if (!CITATION.test(text)) continue;
    CITATION.lastIndex = 0;
    const parts = document.createDocumentFragment();
    let last = 0;
    for (const match of text.matchAll(CITATION)) {
      const numbers = match[1].split(/\s*[,;]\s*/).map(Number);
      if (!numbers.every((n) => n >= 1 && n <= sourceCount)) continue;  // not a citation of ours
      parts.append(text.slice(last, match.index));
      for (const n of numbers) parts.append(citationLink(n, onCite));
      last = match.index + match[0].length;
    }
    parts.append(text.slice(last));
    node.replaceWith(parts);
  }
}

function citationLink(n, onCite) {
  const link = document.createElement("a");
  link.className = "cite";
  link.href = "#";
  link.textContent = String(n);
  link.dataset.source = String(n);
  link.setAttribute("aria-label", `Source ${n}`);
  link.addEventListener("click", (event) => {
    event.preventDefault();
    onCite(n);
  });
  return link;
}
