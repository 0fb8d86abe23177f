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
    // Too few turns for the overall score: the mean of every precisely scored turn instead.
    const name = side === "overall" && summary.overall == null && summary.mean_edge_similarity != null ? "mean_edge_similarity" : side;
    $(`score-${side}`).textContent = round(summary[name]);
    $(`range-${side}`).textContent = range(summary[`${name}_low`], summary[`${name}_high`]);
    const turns = summary.complete_turns - summary.uncertain_turns;
    const note = name !== side ? `Mean of ${turns} turn${turns === 1 ? "" : "s"}; ${summary.overall_reason}.` : summary[`${side}_reason`];
    show($(`reason-${side}`), summary[name] == null || name !== side ? note : "");
  }
  $("left-right").textContent = compareSides(summary);
  const video = $("video");
  video.src = (await api(`${API}/download/video`)).url;
  const anglesChart = drawAngles(analysis.results.series, metrics.turns, video);
  video.addEventListener("timeupdate", () => { anglesChart.$cursor = video.currentTime + (analysis.trim_start_s || 0); anglesChart.draw(); });
  drawScores(metrics.turns);
  fillTurns(metrics.turns);
  fillDownloads(analysis.artifacts);
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
  afterDraw(chart) {
    if (chart.$cursor == null) return;
    const { ctx, chartArea, scales } = chart;
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

function drawAngles(series, turns, video) {
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
      plugins: { turns: { turns } },
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
