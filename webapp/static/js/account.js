// The account section of "My analyses": end every session, or delete the account.
import { api, show } from "./api.js";

const error = document.getElementById("account-error");

document.getElementById("signout-everywhere").addEventListener("click", async () => {
  show(error, "");
  try {
    await api("/api/auth/logout-everywhere", { method: "POST" });
    window.location.assign("/");
  } catch (failure) {
    show(error, failure.message);
  }
});

document.getElementById("delete-account").addEventListener("click", async () => {
  show(error, "");
  if (!window.confirm("Delete your account, every analysis and every file? This cannot be undone.")) return;
  try {
    await api("/api/account", { method: "DELETE" });
    window.location.assign("/");
  } catch (failure) {
    show(error, failure.message);
  }
});
