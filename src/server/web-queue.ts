/**
 * The web page's queue view: every running and queued job on the server (GET /v1/queue), this page's
 * and other clients', with its prompt, state and progress, polled while the page is open (slower when
 * the tab is hidden). When a job leaves the queue, the history is refreshed (it may have made images).
 * (No template literals in the script.)
 */

export const QUEUE_CSS = `
#queue { list-style: none; margin: 0; padding: 0; display: grid; gap: .4rem; }
#queue li { display: grid; grid-template-columns: minmax(0, 1fr) auto; gap: .2rem .6rem; font-size: .85rem; }
#queue li .prompt { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
#queue li .state { color: var(--muted); font-variant-numeric: tabular-nums; }
#queue li .bar { grid-column: 1 / -1; height: 6px; }
#queue li.mine .prompt { font-weight: 600; }
`;

export const QUEUE_HTML = `
    <section class="panel" id="queue-panel" aria-labelledby="queue-title">
      <h2 id="queue-title">Queue</h2>
      <p class="empty" id="queue-empty">No jobs running.</p>
      <ul id="queue" aria-live="polite"></ul>
    </section>
`;

export const QUEUE_SCRIPT = `
var queueSeen = {};

function renderQueue(jobs) {
  var list = $("queue");
  list.textContent = "";
  jobs.forEach(function (j) {
    var li = document.createElement("li");
    li.dataset.id = j.id; li.dataset.status = j.status;
    if (current && current.id === j.id) li.classList.add("mine");
    var p = document.createElement("span"); p.className = "prompt"; p.textContent = j.prompt; p.title = j.prompt;
    var s = document.createElement("span"); s.className = "state";
    s.textContent = j.status === "running" ? (j.total_steps ? "running " + j.step + "/" + j.total_steps : "starting") : "queued #" + (j.position + 1);
    var bar = document.createElement("div"); bar.className = "bar";
    bar.setAttribute("role", "progressbar"); bar.setAttribute("aria-label", "progress of " + j.prompt.slice(0, 40));
    bar.setAttribute("aria-valuemin", "0"); bar.setAttribute("aria-valuemax", "100"); bar.setAttribute("aria-valuenow", String(Math.round(100 * j.progress)));
    var fill = document.createElement("div"); fill.className = "fill"; fill.style.width = Math.round(100 * j.progress) + "%";
    bar.appendChild(fill);
    li.appendChild(p); li.appendChild(s); li.appendChild(bar);
    list.appendChild(li);
  });
  $("queue-empty").classList.toggle("hidden", jobs.length > 0);
}

async function refreshQueue() {
  try {
    var data = await (await fetch("/v1/queue")).json();
    var now = {}, left = false;
    data.jobs.forEach(function (j) { now[j.id] = 1; });
    Object.keys(queueSeen).forEach(function (id) { if (!now[id]) left = true; });
    queueSeen = now;
    renderQueue(data.jobs);
    if (left) loadHistory(true);
  } catch (e) { /* the server is away: try again later */ }
}

async function pollQueue() {
  await refreshQueue();
  setTimeout(pollQueue, document.hidden ? 5000 : 1000);
}
`;
