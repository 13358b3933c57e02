/**
 * Click any image on the web page (results, history, the live preview) to see it at full size in a
 * <dialog>; Escape, the close button or a click outside closes it. (No template literals in the script.)
 */

export const LIGHTBOX_CSS = `
#lightbox { padding: 0; border: 0; background: transparent; max-width: 100vw; max-height: 100vh; }
#lightbox::backdrop { background: rgba(0, 0, 0, .85); }
#lightbox img { display: block; max-width: 96vw; max-height: 92vh; width: auto; height: auto; object-fit: contain; image-rendering: auto; margin: auto; }
#lightbox-close { position: fixed; top: .6rem; right: .6rem; width: auto; background: var(--card); }
#gallery img, #history img, #preview { cursor: zoom-in; }
`;

export const LIGHTBOX_HTML = `
<dialog id="lightbox" aria-label="image at full size"><button type="button" id="lightbox-close" aria-label="Close">✕</button><img id="lightbox-img" alt=""></dialog>
`;

export const LIGHTBOX_SCRIPT = `
// as large as the window allows, small images scaled up too (a 512px result on a big screen)
function fitLightbox() {
  var im = $("lightbox-img"), w = im.naturalWidth, h = im.naturalHeight;
  if (!w || !h) return;
  var s = Math.min(0.96 * window.innerWidth / w, 0.92 * window.innerHeight / h);
  im.style.width = Math.floor(w * s) + "px"; im.style.height = Math.floor(h * s) + "px";
}

function openLightbox(src, alt) {
  $("lightbox-img").style.width = $("lightbox-img").style.height = "";
  $("lightbox-img").src = src; $("lightbox-img").alt = alt || "image at full size";
  if (!$("lightbox").open) $("lightbox").showModal();
}

function initLightbox() {
  document.addEventListener("click", function (e) {
    var t = e.target;
    if (t && t.tagName === "IMG" && t.closest && t.closest("#gallery, #history, .current")) openLightbox(t.src, t.alt);
  });
  $("lightbox-img").addEventListener("load", fitLightbox);
  window.addEventListener("resize", fitLightbox);
  $("lightbox").addEventListener("click", function (e) { if (e.target === $("lightbox") || e.target === $("lightbox-img")) $("lightbox").close(); });
  $("lightbox-close").addEventListener("click", function () { $("lightbox").close(); });
}
`;
