import { api, show } from "./api.js";

// Where to go after signing in: a page of this site only, however the address was written.
const sameSite = (target) => {
  try {
    const url = new URL(target, window.location.origin);
    return url.origin === window.location.origin ? url.href : "/";
  } catch {
    return "/";
  }
};
const next = sameSite(document.getElementById("signin-script").dataset.next || "/");
const emailForm = document.getElementById("email-form");
const codeForm = document.getElementById("code-form");
const error = document.getElementById("signin-error");
let email = "";

emailForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  show(error, "");
  email = document.getElementById("email").value.trim();
  try {
    await api("/api/auth/request-code", { method: "POST", body: { email } });
    document.getElementById("sent-to").textContent = email;
    emailForm.hidden = true;
    codeForm.hidden = false;
    document.getElementById("code").focus();
  } catch (failure) {
    show(error, failure.message);
  }
});

codeForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  show(error, "");
  try {
    await api("/api/auth/verify-code", { method: "POST", body: { email, code: document.getElementById("code").value.trim() } });
    window.location.assign(next);
  } catch (failure) {
    show(error, failure.message);
  }
});
