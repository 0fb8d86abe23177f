import { api, show } from "./api.js";

const list = document.getElementById("partner-list");
const template = document.getElementById("partner-template");
const snippet = (slug) => `<script src="${window.location.origin}/embed/widget.js" data-partner="${slug}" async></script>`;

function render(partner) {
  const form = template.content.firstElementChild.cloneNode(true);
  form.querySelector(".partner-slug").textContent = partner.slug;
  form.querySelector(".partner-stats").textContent = `${partner.submissions.total} clips submitted, ${partner.submissions.complete} analysed.`;
  form.elements.name.value = partner.name;
  form.elements.domains.value = partner.domains.join("\n");
  form.elements.max_upload_mb.value = partner.max_upload_mb;
  form.elements.max_trim_s.value = partner.max_trim_s;
  form.querySelector(".snippet").value = snippet(partner.slug);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = form.querySelector(".partner-error");
    const saved = form.querySelector(".saved");
    show(error, "");
    saved.textContent = "";
    try {
      const body = {
        name: form.elements.name.value,
        domains: form.elements.domains.value.split(/\s+/).filter(Boolean),
        max_upload_mb: Number(form.elements.max_upload_mb.value),
        max_trim_s: Number(form.elements.max_trim_s.value),
      };
      const updated = (await api(`/api/partners/${partner.slug}`, { method: "PATCH", body })).partner;
      form.elements.domains.value = updated.domains.join("\n");
      saved.textContent = "Saved.";
    } catch (failure) {
      show(error, failure.message);
    }
  });
  return form;
}

try {
  const { partners } = await api("/api/partners");
  document.getElementById("no-partners").hidden = partners.length > 0;
  list.replaceChildren(...partners.map(render));
} catch (failure) {
  show(document.getElementById("partners-error"), failure.message);
}
