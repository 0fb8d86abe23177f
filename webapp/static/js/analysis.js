import { api, show } from "./api.js";

// The owner's page reads /api/analyses/<id>; a shared results page reads /api/embed/results/<token>.
const root = document.getElementById("analysis");
const API = root.dataset.api;
const LEFT = "#e07b00";
const RIGHT = "#0088b8";
const LEAN = "#333";
const RUNNING = new Set(["awaiting_upload", "awaiting_confirmation", "queued", "processing"]);
const WAITING = { awaiting_upload: "Waiting for the upload", awaiting_confirmation: "Waiting for the link in the confirmation email to be opened", queued: "Queued: waiting for a free analyser" };
const STEP = { probe: "Checking the video", track: "Finding the skier", pose: "Estimating the pose", smooth: "Smoothing", metrics: "Finding the turns", render: "Drawing the overlay" };
const KINDS = { video: "Overlay video (MP4)", landmarks_csv: "Pose per frame (CSV)", turns_csv: "Turns (CSV)", chart: "Chart (PNG)", results_json: "Everything (JSON)" };
for (let rank = 1; rank <= 4; rank += 1) KINDS[`finding_${rank}`] = `Still of finding ${rank} (JPEG)`;
// Each card falls back to a mean of the clean turns when there are too few for its own score.
const FALLBACK = { overall: "mean_edge_similarity", left: "left_mean", right: "right_mean" };
const MOMENT = "#7b2cbf";

const $ = (elementId) => document.getElementById(elementId);
const round = (value) => (value == null ? "–" : Math.round(value));
// "79–90": the 90% interval of a score.
const range = (low, high) => (low == null || high == null ? "" : `${Math.round(low)}–${Math.round(high)}`);
// Two scores differ only when their intervals do not overlap.
const apart = (a, b) => a.high < b.low || b.high < a.low;

function turnScore(turn) {
  if (turn.partial) return "partial";
  if (turn.edge_similarity == null) return "no score";
  if (turn.uncertain) return `uncertain: ${turn.uncertain_reason}`;
  return `${Math.round(turn.edge_similarity)} (${range(turn.edge_similarity_low, turn.edge_similarity_high)})`;
}

async function poll() {
  let analysis;
  try {
    analysis = (await api(API)).analysis;
  } catch (failure) {
    if (failure.status === 404) return fail("This analysis does not exist, or it is not yours.");
    $("status-text").textContent = `${failure.message} Retrying…`;
    return setTimeout(poll, 4000);
  }
  $("title").textContent = analysis.file_name || "Analysis";
  if (RUNNING.has(analysis.status)) {
    const step = analysis.status === "processing" ? `Analysing: ${STEP[analysis.step] || "working"}` : WAITING[analysis.status];
    $("status-text").textContent = `${step} (${Math.round(analysis.progress)}%)`;
    $("progress").value = analysis.progress;
    return setTimeout(poll, 2000);
  }
  $("progress-panel").hidden = true;
  if (analysis.status === "complete") return showResults(analysis);
  if (analysis.status === "no_skier_found") {
    const warning = analysis.results?.warnings?.slice(-1)[0];
    return fail(warning || "We could not find a skier in enough of the clip.");
  }
  fail(analysis.error || (analysis.status === "cancelled" ? "This analysis was cancelled." : "The analysis failed."), analysis.retryable);
}

function fail(reason, retryable = false) {
  $("progress-panel").hidden = true;
  $("failure").hidden = false;
  $("failure-reason").textContent = reason;
  if ($("retry")) $("retry").hidden = !retryable;
}

// Runs the failed analysis again (it resumes after its last completed step) and follows it.
async function retry() {
  $("retry").disabled = true;
  try {
    await api(`${API}/retry`, { method: "POST" });
  } catch (failure) {
    show($("retry-error"), failure.message);
    return;
  } finally {
    $("retry").disabled = false;
  }
  show($("retry-error"), "");
  $("failure").hidden = true;
  $("progress-panel").hidden = false;
  poll();
}

// What the analysis could not do well (e.g. the skier was lost for part of the clip).
function showWarnings(warnings) {
  $("warning-list").replaceChildren(...warnings.map((warning) => {
    const item = document.createElement("li");
    item.textContent = warning;
    return item;
  }));
  $("warnings").hidden = !warnings.length;
}

async function showResults(analysis) {
  $("results").hidden = false;
  showWarnings(analysis.results.warnings || []);
  const metrics = analysis.results.metrics;
  const summary = metrics.summary;
  for (const side of ["overall", "left", "right"]) {
    // Too few turns for the card's own score: the mean of the clean turns (of that side) instead.
    const fallback = FALLBACK[side];
    const name = summary[side] == null && summary[fallback] != null ? fallback : side;
    $(`score-${side}`).textContent = round(summary[name]);
    $(`range-${side}`).textContent = range(summary[`${name}_low`], summary[`${name}_high`]);
    const turns = side === "overall" ? summary.complete_turns - summary.uncertain_turns : summary[`${side}_mean_turns`];
    const what = side === "overall" ? "turn" : `${side} turn`;
    const note = name !== side ? `Mean of ${turns} ${what}${turns === 1 ? "" : "s"}; ${summary[`${side}_reason`]}.` : summary[`${side}_reason`];
    show($(`reason-${side}`), summary[name] == null || name !== side ? note : "");
  }
  $("left-right").textContent = compareSides(summary);
  const video = $("video");
  video.src = (await api(`${API}/download/video`)).url;
  const series = analysis.results.series;
  // Frame times count from the clip's start; the overlay video from the analysed part's.
  const start = series.time_s[0] ?? analysis.trim_start_s ?? 0;
  const findings = analysis.results.findings || [];
  const anglesChart = drawAngles(series, metrics.turns, video, findings);
  video.addEventListener("timeupdate", () => { anglesChart.$cursor = video.currentTime + start; anglesChart.draw(); });
  showFindings(findings, analysis.artifacts, (finding, item) => showMoment(finding, item, video, anglesChart, start));
  drawScores(metrics.turns);
  fillTurns(metrics.turns);
  fillDownloads(analysis.artifacts);
}

// The findings: what the run shows, its evidence, one thing to try, a still of the moment.
function showFindings(findings, artifacts, onShow) {
  $("findings-panel").hidden = !findings.length;
  $("findings").replaceChildren(...findings.map((finding) => {
    const item = document.createElement("li");
    item.className = `finding ${finding.kind}`;
    item.dataset.rank = finding.rank;
    const still = `finding_${finding.rank}`;
    if (finding.still && artifacts.includes(still)) {
      const image = document.createElement("img");
      image.className = "still";
      image.alt = `Turn ${finding.turn} at ${finding.time_s.toFixed(2)} s, with the skeleton drawn`;
      api(`${API}/download/${still}`).then((link) => { image.src = link.url; }).catch(() => image.remove());
      item.append(image);
    }
    const body = document.createElement("div");
    const title = document.createElement("h3");
    title.textContent = `${finding.rank}. ${finding.title}`;
    const text = document.createElement("p");
    text.className = "finding-text";
    text.textContent = finding.text;
    const cue = document.createElement("p");
    cue.className = "try";
    const label = document.createElement("strong");
    label.textContent = "Try: ";
    cue.append(label, finding.try);
    const evidence = document.createElement("details");
    const summary = document.createElement("summary");
    summary.textContent = "Evidence";
    const said = document.createElement("p");
    said.textContent = finding.evidence.text;
    evidence.append(summary, said);
    body.append(title, text, cue, evidence);
    if (finding.time_s != null) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "secondary";
      button.dataset.action = "show-moment";
      button.textContent = `Show me: turn ${finding.turn} at ${finding.time_s.toFixed(2)} s`;
      button.addEventListener("click", () => onShow(finding, item));
      body.append(button);
    }
    item.append(body);
    return item;
  }));
}

// Seeks the overlay video to the finding's frame and marks it on the chart.
function showMoment(finding, item, video, chart, start) {
  for (const other of document.querySelectorAll("#findings .finding")) other.classList.toggle("active", other === item);
  video.pause();
  video.currentTime = Math.max(0, finding.time_s - start);
  chart.$active = finding.rank;
  chart.$cursor = finding.time_s;
  chart.draw();
  video.scrollIntoView({ behavior: "smooth", block: "center" });
}

function compareSides(summary) {
  if (summary.left == null || summary.right == null) return "";
  const left = { low: summary.left_low, high: summary.left_high };
  const right = { low: summary.right_low, high: summary.right_high };
  if (!apart(left, right)) return "Left and right turns: no measurable difference (their intervals overlap).";
  return summary.left > summary.right ? "Left turns score higher than right turns." : "Right turns score higher than left turns.";
}

// Whiskers from each bar's interval low to high; uncertain turns are hatched and labelled.
const intervals = {
  id: "intervals",
  afterDatasetsDraw(chart, _, options) {
    const { ctx, scales } = chart;
    const bars = chart.getDatasetMeta(0).data;
    ctx.save();
    ctx.strokeStyle = LEAN;
    ctx.lineWidth = 1.5;
    options.turns.forEach((turn, i) => {
      const x = bars[i].x;
      const low = scales.y.getPixelForValue(turn.edge_similarity_low);
      const high = scales.y.getPixelForValue(turn.edge_similarity_high);
      ctx.beginPath();
      ctx.moveTo(x, low); ctx.lineTo(x, high);
      ctx.moveTo(x - 6, low); ctx.lineTo(x + 6, low);
      ctx.moveTo(x - 6, high); ctx.lineTo(x + 6, high);
      ctx.stroke();
      if (turn.uncertain) {
        ctx.fillStyle = LEAN;
        ctx.textAlign = "center";
        ctx.fillText("uncertain", x, scales.y.getPixelForValue(8));
      }
    });
    ctx.restore();
  },
};

const shading = {
  id: "turns",
  beforeDatasetsDraw(chart, _, options) {
    const { ctx, chartArea, scales } = chart;
    for (const turn of options.turns) {
      const from = scales.x.getPixelForValue(turn.start_s);
      const to = scales.x.getPixelForValue(turn.end_s);
      ctx.fillStyle = (turn.direction === "right" ? RIGHT : LEFT) + (turn.partial ? "12" : "26");
      ctx.fillRect(from, chartArea.top, to - from, chartArea.bottom - chartArea.top);
    }
  },
  afterDraw(chart, _, options) {
    const { ctx, chartArea, scales } = chart;
    // Each finding's moment: a numbered line, the one shown last drawn bold.
    for (const finding of options.findings || []) {
      if (finding.time_s == null) continue;
      const x = scales.x.getPixelForValue(finding.time_s);
      const active = chart.$active === finding.rank;
      ctx.save();
      ctx.strokeStyle = MOMENT;
      ctx.lineWidth = active ? 3 : 1.5;
      ctx.setLineDash(active ? [] : [5, 4]);
      ctx.beginPath();
      ctx.moveTo(x, chartArea.top + 18);
      ctx.lineTo(x, chartArea.bottom);
      ctx.stroke();
      ctx.fillStyle = MOMENT;
      ctx.beginPath();
      ctx.arc(x, chartArea.top + 9, 9, 0, 2 * Math.PI);
      ctx.fill();
      ctx.fillStyle = "#fff";
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      ctx.font = "bold 11px system-ui, sans-serif";
      ctx.fillText(String(finding.rank), x, chartArea.top + 9);
      ctx.restore();
    }
    if (chart.$cursor == null) return;
    const x = scales.x.getPixelForValue(chart.$cursor);
    ctx.save();
    ctx.strokeStyle = "#c00";
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.moveTo(x, chartArea.top);
    ctx.lineTo(x, chartArea.bottom);
    ctx.stroke();
    ctx.restore();
  },
};

function drawAngles(series, turns, video, findings) {
  const points = (field) => series.time_s.map((t, i) => ({ x: t, y: series[field][i] }));
  const line = (label, field, color, width) => ({ label, data: points(field), borderColor: color, backgroundColor: color, borderWidth: width, pointRadius: 0, spanGaps: false });
  return new Chart($("angles-chart"), {
    type: "line",
    data: {
      datasets: [
        line("Inclination", "inclination_deg", LEAN, 2.5),
        line("Left edge angle", "left_edge_deg", LEFT, 1.5),
        line("Right edge angle", "right_edge_deg", RIGHT, 1.5),
        { type: "scatter", label: "Apex", data: turns.map((t) => ({ x: t.apex_s, y: t.peak_inclination_deg })), pointStyle: "triangle", pointRadius: 6, borderColor: LEAN, backgroundColor: LEAN },
      ],
    },
    options: {
      animation: false,
      maintainAspectRatio: false,
      interaction: { mode: "nearest", axis: "x", intersect: false },
      scales: { x: { type: "linear", title: { display: true, text: "time (s)" } }, y: { title: { display: true, text: "degrees (+ = skier's right)" } } },
      plugins: { turns: { turns, findings } },
      onClick: (event, _, chart) => {
        const time = chart.scales.x.getValueForPixel(event.x);
        video.currentTime = Math.max(0, time - (series.time_s[0] || 0));
      },
    },
    plugins: [shading],
  });
}

function drawScores(turns) {
  const scored = turns.filter((turn) => turn.edge_similarity != null);
  const colour = (turn) => (turn.direction === "right" ? RIGHT : LEFT) + (turn.uncertain ? "55" : "");
  new Chart($("turns-chart"), {
    type: "bar",
    data: {
      labels: scored.map((turn) => `${turn.index} ${turn.direction}`),
      datasets: [{ label: "Edge similarity", data: scored.map((turn) => turn.edge_similarity), backgroundColor: scored.map(colour) }],
    },
    options: {
      animation: false,
      maintainAspectRatio: false,
      scales: { y: { min: 0, max: 100 } },
      plugins: {
        legend: { display: false },
        intervals: { turns: scored },
        tooltip: { callbacks: { label: (item) => turnScore(scored[item.dataIndex]) } },
      },
    },
    plugins: [intervals],
  });
}

function fillTurns(turns) {
  $("turn-rows").replaceChildren(...turns.map((turn) => {
    const row = document.createElement("tr");
    for (const value of [turn.index, turn.direction, turn.start_s.toFixed(2), turn.apex_s.toFixed(2), turn.end_s.toFixed(2), Math.round(turn.peak_inclination_deg), turnScore(turn)]) {
      const cell = document.createElement("td");
      cell.textContent = value;
      row.append(cell);
    }
    return row;
  }));
}

function fillDownloads(kinds) {
  $("downloads").replaceChildren(...kinds.filter((kind) => KINDS[kind]).map((kind) => {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "link";
    button.dataset.kind = kind;
    button.textContent = KINDS[kind];
    button.addEventListener("click", async () => {
      const link = await api(`${API}/download/${kind}`);
      window.location.assign(link.url);
    });
    item.append(button);
    return item;
  }));
}

$("retry")?.addEventListener("click", retry);
$("delete")?.addEventListener("click", () => $("confirm-delete").showModal());
$("confirm-delete")?.addEventListener("close", async () => {
  if ($("confirm-delete").returnValue !== "delete") return;
  await api(API, { method: "DELETE" });
  window.location.assign("/analyses");
});

poll();
