import { api } from "./api.js";

document.getElementById("signout")?.addEventListener("click", async () => {
  await api("/api/auth/logout", { method: "POST" }).catch(() => {});
  window.location.assign("/");
});
