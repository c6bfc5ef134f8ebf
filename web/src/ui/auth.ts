// The log-in / sign-up screen.

import { Api, ApiError } from "../api";
import type { SavedSession } from "../persist";
import { h } from "./dom";

export function renderAuth(root: HTMLElement, api: Api, onLoggedIn: (s: SavedSession) => void, notice?: string): void {
  let mode: "login" | "signup" = "login";

  const error = h("p", { class: "form-error", role: "alert", id: "auth-error" });
  const info = h("p", { class: "form-info" }, notice ?? "");
  const name = h("input", {
    name: "name",
    autocomplete: "username",
    required: true,
    maxlength: 64,
    pattern: "[A-Za-z0-9_.\\-]+",
    title: "Letters, digits, _ . and -",
    autocapitalize: "none",
    spellcheck: "false",
  });
  const password = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true, minlength: 8 });
  const display = h("input", { name: "display_name", autocomplete: "name", maxlength: 128 });
  const displayRow = h("label", { class: "field", hidden: true }, h("span", null, "Display name (optional)"), display);
  const submit = h("button", { type: "submit", class: "primary" }, "Log in");
  const switchText = h("span", null, "No account yet?");
  const switchButton = h("button", { type: "button", class: "link" }, "Sign up");

  const setMode = (m: typeof mode) => {
    mode = m;
    const signup = m === "signup";
    heading.textContent = signup ? "Create an account" : "Log in";
    submit.textContent = signup ? "Sign up" : "Log in";
    displayRow.hidden = !signup;
    password.autocomplete = signup ? "new-password" : "current-password";
    switchText.textContent = signup ? "Already have an account?" : "No account yet?";
    switchButton.textContent = signup ? "Log in" : "Sign up";
    error.textContent = "";
  };
  switchButton.addEventListener("click", () => setMode(mode === "login" ? "signup" : "login"));

  const heading = h("h1", null, "Log in");
  const form = h(
    "form",
    { class: "auth-form", novalidate: true },
    h("div", { class: "brand" }, h("span", { class: "logo", "aria-hidden": "true" }, "💬"), " chatcore"),
    heading,
    info,
    h("label", { class: "field" }, h("span", null, "User name"), name),
    h("label", { class: "field" }, h("span", null, "Password"), password),
    displayRow,
    error,
    submit,
    h("p", { class: "switch" }, switchText, " ", switchButton),
  );

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    info.textContent = "";
    const n = name.value.trim();
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(n)) {
      error.textContent = "The user name must be 1 to 64 letters, digits, _ . or -.";
      return name.focus();
    }
    if (password.value.length < 8) {
      error.textContent = "The password must be at least 8 characters.";
      return password.focus();
    }
    submit.disabled = true;
    try {
      if (mode === "signup") await api.signup(n, password.value, display.value.trim() || undefined);
      const s = await api.login(n, password.value);
      onLoggedIn({ token: s.token, userId: s.user_id, name: n });
    } catch (e) {
      const err = e as ApiError;
      if (err.code === "already_exists") error.textContent = `The name “${n}” is taken. Choose another one.`;
      else if (err.code === "unauthenticated") error.textContent = "Wrong user name or password.";
      else error.textContent = err.message;
    } finally {
      submit.disabled = false;
    }
  });

  root.replaceChildren(h("main", { class: "auth" }, form));
  name.focus();
}
