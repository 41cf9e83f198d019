"use strict";
// The parent's check: load the verifier (Go compiled to WebAssembly, held
// in this page), then verify the file the parent picks with the keys this
// page carries. Nothing is fetched and nothing is sent: the page's
// Content-Security-Policy allows no connection at all.
(function () {
  const $ = (id) => document.getElementById(id);
  const input = $("bundle");
  const status = $("status");
  const keys = JSON.parse($("spoor-keys").textContent);
  let markReady;
  const ready = new Promise((resolve) => { markReady = resolve; });
  globalThis.spoorReady = () => markReady();

  async function start() {
    const b64 = $("spoor-wasm").textContent.trim();
    const packed = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    // The verifier is kept gzipped; the browser unpacks it here, from
    // memory (a Response over a stream is not a request).
    const unpacked = new Blob([packed]).stream().pipeThrough(new DecompressionStream("gzip"));
    const bytes = await new Response(unpacked).arrayBuffer();
    const go = new Go();
    const { instance } = await WebAssembly.instantiate(bytes, go.importObject);
    go.run(instance);
    await ready;
  }

  function show(verdict, ms) {
    const section = $("verdict");
    const box = $("verdict-box");
    const problems = $("problems");
    const details = $("details");
    const frame = $("report");
    problems.replaceChildren();
    details.replaceChildren();
    section.dataset.verdict = verdict.ok ? "ok" : "fout";
    section.dataset.ms = String(Math.round(ms));
    box.className = verdict.ok ? "ok" : "fail";
    if (verdict.ok) {
      $("verdict-title").textContent = "Het bewijs klopt";
      $("verdict-text").textContent = verdict.summary;
      frame.srcdoc = verdict.report;
      frame.hidden = false;
      $("technical").hidden = true;
    } else {
      $("verdict-title").textContent = "Het bewijs klopt niet";
      $("verdict-text").textContent = "Vertrouw dit bestand niet. Neem contact op met de privacybalie of met de functionaris gegevensbescherming, en laat deze melding zien:";
      const seen = new Set();
      for (const p of verdict.problems || []) {
        if (!seen.has(p.nl)) {
          seen.add(p.nl);
          const li = document.createElement("li");
          li.textContent = p.nl;
          problems.append(li);
        }
        const d = document.createElement("li");
        d.textContent = p.detail;
        details.append(d);
      }
      frame.removeAttribute("srcdoc");
      frame.hidden = true;
      $("technical").hidden = false;
    }
    // The parent's own check with the child's number (issue 23), when
    // asked for and the bundle verified.
    const about = $("about-child");
    if (verdict.about_child) {
      about.textContent = verdict.about_child.nl;
      about.className = verdict.about_child.ok ? "ok" : "fail";
      about.hidden = false;
      section.dataset.about = verdict.about_child.ok ? "ok" : "fout";
    } else {
      about.hidden = true;
      delete section.dataset.about;
    }
    section.hidden = false;
    $("verdict-title").focus();
  }

  start().then(() => {
    input.disabled = false;
    status.textContent = "Klaar. Kies uw inzagebestand.";
    // How long unpacking and starting the verifier took (for the tests).
    document.body.dataset.startMs = String(Math.round(performance.now()));
    document.body.dataset.ready = "true";
  }, (err) => {
    status.textContent = "De controle kan in deze browser niet starten. Probeer een nieuwere browser. (" + err + ")";
    document.body.dataset.ready = "error";
  });

  input.addEventListener("change", async () => {
    const file = input.files && input.files[0];
    if (!file) {
      return;
    }
    status.textContent = "Bezig met controleren…";
    const t0 = performance.now();
    const data = new Uint8Array(await file.arrayBuffer());
    const bsn = $("bsn");
    const sealed = $("sealed").files && $("sealed").files[0];
    let verdict;
    if (bsn.value.trim() !== "" && sealed) {
      // The number goes to the verifier in this page and no further; the
      // field is emptied once it has it.
      const number = bsn.value;
      bsn.value = "";
      status.textContent = "Bezig met controleren… Met het BSN duurt dit enkele seconden.";
      verdict = JSON.parse(await globalThis.spoorVerify(data, keys.log_vkey, keys.cosigner_vkey, keys.admin_vkey, await sealed.text(), number));
    } else {
      verdict = JSON.parse(await globalThis.spoorVerify(data, keys.log_vkey, keys.cosigner_vkey, keys.admin_vkey));
    }
    const ms = performance.now() - t0;
    status.textContent = "Gecontroleerd: " + file.name;
    // Emptied, so that choosing the same file again (say, after typing
    // the BSN) checks it again: a file input reports no change otherwise.
    input.value = "";
    show(verdict, ms);
  });
})();
