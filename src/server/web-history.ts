/**
 * The web page's history: the server's stored images (GET /v1/history, newest first, a page at a
 * time with "Show more"), so results survive a reload and show what other clients made. Each entry has
 * its parameters text, "Reuse these settings" (filled from the PNG's A1111 fields), "Send to img2img /
 * inpaint", and a download. fillFromFields is shared with the PNG drop (web-pickers.ts).
 * (No template literals in the script: this file holds it in one.)
 */

export const HISTORY_CSS = `
#history-panel h2, #queue-panel h2 { font-size: 1rem; margin: 0 0 .5rem; display: flex; gap: .5rem; align-items: baseline; }
#history-panel h2 small { color: var(--muted); font-weight: normal; font-size: .85rem; }
#history { display: grid; grid-template-columns: repeat(auto-fill, minmax(180px, 1fr)); gap: .7rem; }
@media (max-width: 760px) { #history { grid-template-columns: repeat(2, minmax(0, 1fr)); } }
#history .card pre { max-height: 5rem; font-size: 11px; }
#history-more { width: auto; margin-top: .6rem; }
`;

export const HISTORY_HTML = `
    <section class="panel" id="history-panel" aria-labelledby="history-title">
      <h2 id="history-title">History <small id="history-count"></small></h2>
      <p class="empty" id="history-empty">Nothing made yet.</p>
      <div id="history"></div>
      <button type="button" id="history-more" class="hidden">Show more</button>
    </section>
`;

export const HISTORY_SCRIPT = `
var hist = { offset: 0, limit: 24, names: {} };

function historyItem(it) {
  var tpl = $("card-template").content.firstElementChild.cloneNode(true);
  tpl.dataset.name = it.name;
  var im = document.createElement("img");
  im.src = it.url; im.alt = it.fields.Prompt || it.name; im.loading = "lazy";
  if (it.width && it.height) { im.width = it.width; im.height = it.height; }
  tpl.querySelector(".images").appendChild(im);
  tpl.querySelector("pre").textContent = it.parameters || it.name;
  tpl.querySelector(".reuse").textContent = "Reuse";
  tpl.querySelector(".reuse").addEventListener("click", function () { fillFromFields(it.fields); });
  tpl.querySelector(".edit").textContent = "Send to img2img / inpaint";
  tpl.querySelector(".edit").addEventListener("click", function () { editResult(it.url); });
  var a = document.createElement("a");
  a.href = it.url; a.download = it.name; a.textContent = "Download"; a.className = "download";
  tpl.querySelector(".buttons").appendChild(a);
  return tpl;
}

// reset: the newest page again (new ones go on top, the ones already shown are not repeated)
async function loadHistory(reset) {
  var offset = reset ? 0 : hist.offset;
  var data;
  try { data = await (await fetch("/v1/history?offset=" + offset + "&limit=" + hist.limit)).json(); }
  catch (e) { return; }
  if (!data || !data.items) return;
  var fresh = [];
  data.items.forEach(function (it) { if (!hist.names[it.name]) { hist.names[it.name] = 1; fresh.push(historyItem(it)); } });
  if (reset) { for (var i = fresh.length - 1; i >= 0; i--) $("history").prepend(fresh[i]); }
  else fresh.forEach(function (el) { $("history").appendChild(el); });
  hist.offset = Math.max(hist.offset, $("history").children.length);
  $("history-count").textContent = data.total ? data.total + " image" + (data.total === 1 ? "" : "s") : "";
  $("history-empty").classList.toggle("hidden", data.total > 0);
  $("history-more").classList.toggle("hidden", hist.offset >= data.total);
}

// an A1111 parameters text read into fields (png-info's "parameters") into the form
function fillFromFields(f) {
  // what the text leaves out keeps the form's value
  var p = { prompt: f.Prompt || "", negative_prompt: f["Negative prompt"] || "", seed: f.Seed ? Number(f.Seed) : $("seed").value,
    steps: f.Steps ? Number(f.Steps) : $("steps").value, guidance_scale: f["CFG scale"] ? Number(f["CFG scale"]) : $("guidance").value, n: Number($("count").value) };
  if (f["Size-1"] && f["Size-2"]) { p.width = Number(f["Size-1"]); p.height = Number(f["Size-2"]); }
  if (f.Sampler) p.scheduler = f.Sampler;
  reuse(p);
  if (typeof pickersFill === "function") pickersFill(f);
  extrasFill(f);
}

function initHistory() {
  $("history-more").addEventListener("click", function () { loadHistory(false); });
  return loadHistory(true);
}
`;
