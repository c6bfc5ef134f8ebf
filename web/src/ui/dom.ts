// A few lines instead of a framework: create elements with attributes,
// listeners and children. Text always goes in as text nodes (never
// innerHTML), so nothing a user types can become markup.

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined | EventListener>;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs?: Attrs | null,
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [key, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (key.startsWith("on") && typeof value === "function") {
        el.addEventListener(key.slice(2), value);
      } else if (key === "class") {
        el.className = String(value);
      } else if (value === true) {
        el.setAttribute(key, "");
      } else {
        el.setAttribute(key, String(value));
      }
    }
  }
  append(el, children);
  return el;
}

function append(el: Node, children: (Child | Child[])[]): void {
  for (const c of children) {
    if (Array.isArray(c)) append(el, c);
    else if (c === null || c === undefined || c === false) continue;
    else el.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
  }
}

/** Replaces an element's children only if they differ (keeps focus and scroll where they are). */
export function setChildren(el: Element, children: Node[]): void {
  const current = el.childNodes;
  if (current.length === children.length && children.every((c, i) => current[i] === c)) return;
  el.replaceChildren(...children);
}

/** The first letter of a name, for the round avatars. */
export function initial(name: string): string {
  const first = [...name.trim()][0] ?? "?";
  return first.toUpperCase();
}

/** A stable hue per name, so avatars are told apart by colour too. */
export function hue(name: string): number {
  let x = 0;
  for (const ch of name) x = (x * 31 + ch.codePointAt(0)!) % 360;
  return x;
}

export function avatar(name: string, online?: boolean): HTMLElement {
  const el = h("span", { class: "avatar", "aria-hidden": "true" }, initial(name));
  // Through the CSSOM: the page's CSP forbids style attributes.
  el.style.setProperty("--hue", String(hue(name)));
  if (online !== undefined) el.appendChild(h("span", { class: online ? "dot online" : "dot offline" }));
  return el;
}
