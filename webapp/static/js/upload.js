import { api, show } from "./api.js";

const form = document.getElementById("upload");
if (form) {
  const input = document.getElementById("file");
  const drop = form.querySelector(".drop");
  const chosen = document.getElementById("chosen");
  const button = document.getElementById("analyse");
  const bar = document.getElementById("upload-progress");
  const error = document.getElementById("upload-error");
  const types = { mp4: "video/mp4", mov: "video/quicktime", webm: "video/webm" };

  const typeOf = (file) => types[file.name.split(".").pop().toLowerCase()] || file.type;
  const choose = (file) => {
    show(error, "");
    if (!Object.values(types).includes(typeOf(file))) {
      show(error, "Choose an MP4, MOV or WebM video.");
      button.disabled = true;
      return;
    }
    show(chosen, `${file.name} (${(file.size / 1048576).toFixed(1)} MB)`);
    button.disabled = false;
  };
  input.addEventListener("change", () => input.files[0] && choose(input.files[0]));
  for (const name of ["dragenter", "dragover"]) drop.addEventListener(name, (event) => { event.preventDefault(); drop.classList.add("over"); });
  for (const name of ["dragleave", "drop"]) drop.addEventListener(name, () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    if (event.dataTransfer.files[0]) {
      input.files = event.dataTransfer.files;
      choose(input.files[0]);
    }
  });

  const number = (id) => {
    const value = document.getElementById(id).value;
    return value === "" ? undefined : Number(value);
  };

  // PUT with progress events, which fetch does not give.
  const put = (upload, file) => new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open(upload.method, upload.url);
    for (const [name, value] of Object.entries(upload.headers)) request.setRequestHeader(name, value);
    request.upload.addEventListener("progress", (event) => { bar.value = (100 * event.loaded) / event.total; });
    request.addEventListener("load", () => (request.status < 300 ? resolve() : reject(new Error("The upload was refused. Please try again."))));
    request.addEventListener("error", () => reject(new Error("The upload failed: check your connection and try again.")));
    request.send(file);
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = input.files[0];
    if (!file) return;
    button.disabled = true;
    show(error, "");
    bar.hidden = false;
    try {
      const created = await api("/api/analyses/create-upload", {
        method: "POST",
        body: { filename: file.name, content_type: typeOf(file), size: file.size, trim_start_s: number("trim-start"), trim_end_s: number("trim-end") },
      });
      await put(created.upload, file);
      await api(`/api/analyses/${created.analysis.id}/confirm-upload`, { method: "POST" });
      window.location.assign(`/analyses/${created.analysis.id}`);
    } catch (failure) {
      show(error, failure.message);
      button.disabled = false;
      bar.hidden = true;
    }
  });
}
