import { api } from "./api.js";

const rows = document.getElementById("rows");
const label = { awaiting_upload: "Waiting for upload", awaiting_confirmation: "Waiting for email confirmation", queued: "Queued", processing: "Analysing", complete: "Complete", no_skier_found: "No skier found", failed: "Failed", cancelled: "Cancelled" };
let page = 1;

async function load() {
  const data = await api(`/api/analyses?page=${page}&per_page=20`);
  rows.replaceChildren(...data.analyses.map((analysis) => {
    const row = document.createElement("tr");
    const link = document.createElement("a");
    link.href = `/analyses/${analysis.id}`;
    link.textContent = analysis.file_name || analysis.id;
    const score = analysis.edge_similarity.overall;
    const cells = [link, new Date(analysis.created_at).toLocaleString(), label[analysis.status] || analysis.status, score == null ? "–" : Math.round(score)];
    row.replaceChildren(...cells.map((content) => {
      const cell = document.createElement("td");
      cell.append(content);
      return cell;
    }));
    row.cells[2].className = `status ${analysis.status}`;
    return row;
  }));
  document.getElementById("empty").hidden = data.total > 0;
  document.getElementById("page").textContent = data.pages > 1 ? `Page ${page} of ${data.pages}` : "";
  document.getElementById("previous").disabled = page <= 1;
  document.getElementById("next").disabled = page >= data.pages;
}

document.getElementById("previous").addEventListener("click", () => { page -= 1; load(); });
document.getElementById("next").addEventListener("click", () => { page += 1; load(); });
load();
