/*
 * The sandbox page: choose a patient, a coverage and orders, fire real CDS Hooks calls at this
 * service (signed with a short-lived token the sandbox mints), and show the answer as an EHR does:
 * cards, suggestions to accept, overrides with a reason, the coverage information in words, the
 * raw JSON and the latency. Every text from a card goes into the page as text (textContent, or
 * SandboxMarkdown, which builds nodes), never as HTML.
 */
(function () {
  "use strict";

  var USER = "Practitioner/demo-practitioner";
  // `answerFor` counts the calls and patient choices, `patientChoice` the patient choices: a call answered
  // after another call or patient was chosen, or drafts after another patient, are the earlier one's and
  // are dropped rather than shown on this one's page.
  var state = { setup: null, patients: {}, coverages: {}, coveragesOf: null, drafts: [], selections: [], changed: {},
    lastHook: null, answerFor: 0, patientChoice: 0 };

  function $(id) { return document.getElementById(id); }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      if (name === "text") node.textContent = attrs[name];
      else if (name === "className") node.className = attrs[name];
      else node.setAttribute(name, attrs[name]);
    });
    (children || []).forEach(function (child) {
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  function uuid() {
    var b = new Uint8Array(16);
    window.crypto.getRandomValues(b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.prototype.map.call(b, function (x) { return (x + 0x100).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  function setStatus(id, text, isError) {
    var node = $(id);
    node.textContent = text;
    node.classList.toggle("error", !!isError);
  }

  function problem(body, status) {
    var issue = body && body.issue && body.issue[0];
    return "HTTP " + status + (issue && issue.diagnostics ? ": " + issue.diagnostics : "");
  }

  function getJson(url) {
    return fetch(url, { headers: { Accept: "application/json" } }).then(function (response) {
      return response.json().then(function (body) {
        if (!response.ok) throw new Error(problem(body, response.status));
        return body;
      });
    });
  }

  function postJson(url, body, token) {
    var headers = { "Content-Type": "application/json", Accept: "application/json" };
    if (token) headers.Authorization = "Bearer " + token;
    return fetch(url, { method: "POST", headers: headers, body: JSON.stringify(body) }).then(function (response) {
      return response.text().then(function (text) {
        var parsed = null;
        try { parsed = text ? JSON.parse(text) : null; } catch (e) { parsed = { text: text }; }
        return { status: response.status, ok: response.ok, body: parsed };
      });
    });
  }

  function mint(serviceId, feedback) {
    return postJson("/sandbox/api/token", { service: serviceId, feedback: feedback }).then(function (answer) {
      if (!answer.ok) throw new Error("token: " + problem(answer.body, answer.status));
      return answer.body.token;
    });
  }

  function shown(value) {
    // The raw JSON as shown: the FHIR access token is the EHR's secret, so it is masked.
    return JSON.stringify(value, function (key, v) {
      return key === "access_token" ? "(hidden)" : v;
    }, 2);
  }

  /* ---------- choosing a patient, a coverage and orders ---------- */

  function serviceFor(hook) {
    return state.setup.services.filter(function (s) { return s.hook === hook; })[0];
  }

  function loadSetup() {
    return getJson("/sandbox/api/setup").then(function (setup) {
      state.setup = setup;
      var kits = $("kits");
      setup.kits.forEach(function (kit) {
        var codes = kit.lines.map(function (l) { return l.system.toUpperCase() + " " + l.code + " " + l.display; });
        var box = el("input", { type: "checkbox", id: "kit-" + kit.id, value: kit.id });
        box.checked = setup.defaultKits.indexOf(kit.id) >= 0;
        kits.appendChild(el("label", { for: "kit-" + kit.id, className: "choice" }, [
          box, el("span", {}, [kit.label + " ", el("span", { className: "code", text: "(" + codes.join("; ") + ")" })])
        ]));
      });
      var infusate = $("infusate");
      infusate.appendChild(el("option", { value: "", text: "none" }));
      setup.infusates.forEach(function (i) {
        infusate.appendChild(el("option", { value: i.code, text: i.ingredient + " (RxNorm " + i.code + ")" }));
      });
      infusate.value = ""; // until a patient is chosen: then what its demo sample request drafts
      var buttons = $("hook-buttons");
      setup.services.forEach(function (service) {
        var button = el("button", { type: "button", id: "fire-" + service.hook, text: service.hook });
        button.disabled = true;
        button.addEventListener("click", function () { fire(service.hook); });
        buttons.appendChild(button);
      });
      setStatus("setup-status", setup.signed
        ? "Calls are signed as the demo EHR and name the FHIR server " + setup.fhirServer + "."
        : "Calls name the FHIR server " + setup.fhirServer + " (this deployment does not require a JWT).");
    });
  }

  function loadPatients() {
    return getJson("/sandbox/api/patients").then(function (body) {
      var select = $("patient");
      var chosen = select.value; // kept through a reload, so the drafts and answers on screen stay its
      clear(select);
      state.patients = {};
      select.appendChild(el("option", { value: "", text: "choose a patient (" + body.patients.length + ")" }));
      var groups = { demo: el("optgroup", { label: "Demo patients" }), other: el("optgroup", { label: "Other patients on the FHIR server" }) };
      body.patients.forEach(function (p) {
        state.patients[p.id] = p;
        groups[p.demo ? "demo" : "other"].appendChild(el("option", { value: p.id, text: p.name + " — " + p.id }));
      });
      [groups.demo, groups.other].forEach(function (group) { if (group.firstChild) select.appendChild(group); });
      select.value = chosen;
      if (select.value !== chosen) choosePatient(); // the chosen patient left the server
      select.disabled = false;
    });
  }

  function reloadPatients() {
    // Patients loaded onto the FHIR server after the page opened (the demo's Synthea patients load
    // in the background) appear without reloading the page and losing its state.
    return loadPatients().catch(function (error) { setStatus("setup-status", error.message, true); });
  }

  function choosePatient() {
    var id = $("patient").value;
    state.patientChoice += 1;
    var coverage = $("coverage");
    clear(coverage);
    state.coverages = {};
    state.coveragesOf = null;
    describeCoverage();
    state.drafts = [];
    state.changed = {};
    clearAnswer("No call yet for this patient.");
    renderDrafts();
    $("place-orders").disabled = true;
    // The infusate the patient's own demo sample request drafts (none where it drafts none, or where
    // the patient has no sample): a baclofen-pump patient is not made a morphine-pump order unasked.
    var drafted = state.setup.patientInfusates;
    $("infusate").value = (Object.prototype.hasOwnProperty.call(drafted, id) && drafted[id]) || "";
    // Likewise the orders it drafts (a refill for the refill patient, a replacement for the replacement
    // one); a patient without a sample gets the implant, which the service judges as a replacement where
    // a pump is already in place and answers with a trial to order first where no trial is recorded.
    var sample = Object.prototype.hasOwnProperty.call(state.setup.patientKits, id) ? state.setup.patientKits[id] : null;
    var kits = sample || state.setup.defaultKits;
    Array.prototype.forEach.call(document.querySelectorAll("#kits input"), function (box) {
      box.checked = kits.indexOf(box.value) >= 0;
    });
    $("kits-note").textContent = !id ? "" : sample ? "(as its demo sample)" : "(the implant: no demo sample)";
    var patient = state.patients[id];
    $("patient-facts").textContent = patient
      ? [patient.gender, patient.birthDate ? "born " + patient.birthDate : null].filter(Boolean).join(", ")
      : "";
    if (!patient) {
      coverage.appendChild(el("option", { value: "", text: "choose a patient first" }));
      coverage.disabled = true;
      return Promise.resolve();
    }
    coverage.appendChild(el("option", { value: "", text: "loading coverages ..." }));
    return getJson("/sandbox/api/patients/" + encodeURIComponent(id) + "/coverages").then(function (body) {
      if ($("patient").value !== id) return; // another patient was chosen meanwhile
      clear(coverage);
      state.coverages = {};
      body.coverages.forEach(function (c) {
        state.coverages[c.id] = c;
        // Marked as the service takes it: an `active` Coverage whose period ended is not active to it.
        var standing = c.inactive ? "not active: " + c.inactive : (c.status || "no status");
        var words = c.payer + (c.plan ? " — " + c.plan : "") + " (" + standing + ")";
        coverage.appendChild(el("option", { value: c.id, text: words }));
      });
      if (!body.coverages.length) coverage.appendChild(el("option", { value: "", text: "no coverage on file" }));
      var active = body.coverages.filter(function (c) { return !c.inactive; })[0];
      if (active) coverage.value = active.id; // the prefetch template asks for the active Coverage
      state.coveragesOf = id;
      coverage.disabled = false;
      describeCoverage();
      $("place-orders").disabled = false;
    }).catch(function (error) { setStatus("setup-status", error.message, true); });
  }

  function describeCoverage() {
    // Before any call: what a patient without a Coverage, or with a Coverage that is not active, will
    // be answered, so that the HTTP 400 or the "not covered" of order-sign and appointment-book is no surprise.
    var chosen = state.coverages[$("coverage").value];
    var words = "";
    if (state.coveragesOf !== $("patient").value || !state.coveragesOf) words = ""; // none chosen, or loading
    else if (!chosen || chosen.status === "entered-in-error") {
      words = "No coverage on file for this patient: order-select answers with a notice card, and " +
        "order-sign and appointment-book answer HTTP 400 naming the missing Coverage (CRD: those hooks are " +
        "answered for the patient's Coverage).";
    } else if (chosen.inactive) {
      words = "This coverage is not active (" + chosen.inactive + "): it is sent as chosen, and every order " +
        "is answered not covered for it (reason: no active coverage), with a card saying so. Choose an " +
        "active one to have the orders judged.";
    }
    $("coverage-note").textContent = words;
    $("coverage-note").hidden = !words;
  }

  function nameChosenCoverage(drafts) {
    // Draft orders name the Coverage chosen now (as the prefetch does), whichever was chosen when
    // they were asked for.
    var chosen = $("coverage").value;
    drafts.forEach(function (order) {
      if (!order.insurance) return;
      if (chosen) order.insurance = [{ reference: "Coverage/" + chosen }];
      else delete order.insurance;
    });
  }

  function chooseCoverage() {
    // The answer shown was for the Coverage chosen before, so it goes.
    describeCoverage();
    if (!state.drafts.length) return;
    nameChosenCoverage(state.drafts);
    renderDrafts();
    clearAnswer("No call yet for this coverage.");
  }

  function choiceNotDrafted() {
    // Ticking an order drafts nothing: the hooks send the draft orders listed.
    if (state.drafts.length) {
      setStatus("setup-status", "Not drafted yet: press Draft these orders to send the orders chosen " +
        "(the hooks send the draft orders listed).");
    }
  }

  function placeOrders() {
    var kits = Array.prototype.filter.call(document.querySelectorAll("#kits input"), function (b) { return b.checked; })
      .map(function (b) { return b.value; });
    if (!kits.length) { setStatus("setup-status", "Choose at least one order.", true); return Promise.resolve(); }
    var body = {
      patientId: $("patient").value,
      coverageId: $("coverage").value || null,
      kits: kits,
      infusate: $("infusate").value || null
    };
    var asked = state.patientChoice;
    return postJson("/sandbox/api/orders", body).then(function (answer) {
      if (asked !== state.patientChoice) return; // drafted for the patient chosen before
      if (!answer.ok) throw new Error(problem(answer.body, answer.status));
      state.drafts = answer.body.orders;
      nameChosenCoverage(state.drafts); // another may have been chosen while they were drafted
      state.selections = answer.body.orders.filter(function (o) { return o.resourceType !== "MedicationRequest"; })
        .map(function (o) { return o.resourceType + "/" + o.id; });
      state.changed = {};
      renderDrafts();
      setStatus("setup-status", state.drafts.length + (state.drafts.length === 1 ? " draft order" : " draft orders") +
        " for " + body.patientId + ".");
    }).catch(function (error) { setStatus("setup-status", error.message, true); });
  }

  function orderWords(resource) {
    var concept = resource.code || resource.codeCodeableConcept || resource.medicationCodeableConcept || {};
    var coding = (concept.coding || [])[0] || {};
    var words = [coding.code, concept.text || coding.display].filter(Boolean).join(" ");
    return resource.resourceType + " " + (words || resource.id || "");
  }

  function renderDrafts() {
    var list = $("drafts");
    clear(list);
    state.drafts.forEach(function (resource) {
      var key = resource.resourceType + "/" + resource.id;
      var item = el("li", { "data-ref": key }, [
        el("span", { text: orderWords(resource) }), " ",
        el("span", { className: "code", text: "(" + key + ", " + (resource.status || "no status") + ")" })
      ]);
      if (state.changed[key]) {
        item.classList.add("changed");
        item.appendChild(el("span", { className: "tag", text: state.changed[key] }));
      }
      list.appendChild(item);
    });
    $("drafts-empty").hidden = state.drafts.length > 0;
    state.setup && state.setup.services.forEach(function (service) {
      $("fire-" + service.hook).disabled = state.drafts.length === 0;
    });
  }

  /* ---------- the hook call ---------- */

  function bundle(type, resources) {
    return { resourceType: "Bundle", type: type, entry: resources.map(function (r) { return { resource: r }; }) };
  }

  function withDrug(order) {
    // A booked order after signing: the drug drafted beside it would be the chart's active order by
    // then, but the sandbox writes nothing to the chart, so the booked order names it (orderDetail, as
    // the service reads a pump order's drug); else appointment-book judged the pump with no drug.
    var nonPump = state.setup.kits.filter(function (k) { return k.id === "non-pump"; })
      .reduce(function (codes, k) { return codes.concat(k.lines.map(function (l) { return l.code; })); }, []);
    var coding = ((order.code || {}).coding || [])[0] || {};
    var drugs = state.drafts.filter(function (o) { return o.resourceType === "MedicationRequest"; })
      .map(function (o) { return JSON.parse(JSON.stringify(o.medicationCodeableConcept)); });
    if (!drugs.length || nonPump.indexOf(coding.code) >= 0) return order;
    var booked = JSON.parse(JSON.stringify(order));
    booked.orderDetail = (booked.orderDetail || []).concat(drugs);
    return booked;
  }

  function appointments(patientId) {
    var start = new Date(Date.now() + 7 * 86400000);
    start.setUTCHours(8, 0, 0, 0);
    var orders = state.drafts.filter(function (o) { return o.resourceType === "ServiceRequest"; }).map(withDrug);
    var booked = orders.map(function (order, n) {
      return {
        resourceType: "Appointment",
        id: "sandbox-appointment-" + n,
        status: "proposed",
        basedOn: [{ reference: "ServiceRequest/" + order.id }],
        description: orderWords(order),
        start: start.toISOString(),
        end: new Date(start.getTime() + 2 * 3600000).toISOString(),
        participant: [{ actor: { reference: "Patient/" + patientId }, required: "required", status: "accepted" }]
      };
    });
    return bundle("collection", booked.concat(orders));
  }

  function hookRequest(hook) {
    var setup = state.setup;
    var patientId = $("patient").value;
    var context = { userId: USER, patientId: patientId };
    if (hook === "appointment-book") {
      context.appointments = appointments(patientId);
    } else {
      context.draftOrders = bundle("collection", state.drafts);
      if (hook === "order-select") context.selections = state.selections.slice();
    }
    var request = { hook: hook, hookInstance: uuid(), fhirServer: setup.fhirServer, context: context, prefetch: {} };
    if (setup.fhirAccessToken) {
      request.fhirAuthorization = {
        access_token: setup.fhirAccessToken, token_type: "Bearer", expires_in: 300,
        scope: "patient/*.read", subject: "idds-crd-sandbox", patient: patientId
      };
    }
    var patient = state.patients[patientId];
    if (patient) request.prefetch.patient = patient.resource;
    var coverage = state.coverages[$("coverage").value];
    if (coverage) {
      var chosen = bundle("searchset", [coverage.resource]);
      chosen.total = 1;
      request.prefetch.coverage = chosen;
    }
    return request;
  }

  function fire(hook) {
    var service = serviceFor(hook);
    var request = hookRequest(hook);
    clearAnswer(hook + ": calling ...");
    var asked = state.answerFor;
    $("request-json").textContent = shown(request);
    return mint(service.id, false).then(function (token) {
      var started = performance.now();
      return postJson("/cds-services/" + service.id, request, token).then(function (answer) {
        if (asked !== state.answerFor) return; // another patient or call was chosen meanwhile
        var elapsed = Math.round(performance.now() - started);
        state.lastHook = { service: service, request: request, response: answer.body };
        $("response-json").textContent = shown(answer.body);
        if (!answer.ok) {
          setStatus("call-status", hook + ": " + problem(answer.body, answer.status) + " after " + elapsed + " ms", true);
          showNoAnswer("No cards: the call failed (above).");
          return;
        }
        var cards = answer.body.cards || [];
        setStatus("call-status", hook + ": HTTP " + answer.status + " in " + elapsed + " ms, " + cards.length +
          (cards.length === 1 ? " card" : " cards") + ".");
        renderCards(cards, service);
        renderCoverage(answer.body.systemActions || []);
        $("answer").focus({ preventScroll: true }); // keyboard and narrow screens: go to the answer
        $("answer").scrollIntoView({ block: "start" });
      });
    }).catch(function (error) {
      if (asked !== state.answerFor) return;
      setStatus("call-status", hook + ": " + error.message, true);
      showNoAnswer("No cards: the call failed (above).");
    });
  }

  /* ---------- the answer ---------- */

  function showNoAnswer(words) {
    // Cards and coverage information belong to one call: none stays on screen under another.
    clear($("cards"));
    $("cards").appendChild(el("p", { className: "hint", text: words }));
    clear($("coverage-info"));
    $("coverage-info").appendChild(el("p", { className: "hint", text: "Appears here after a call." }));
  }

  function clearAnswer(status) {
    // A new call, or another patient or coverage: the earlier answer (cards, coverage information, JSON,
    // the feedback sent on its cards) goes.
    state.lastHook = null;
    state.answerFor += 1;
    setStatus("call-status", status);
    showNoAnswer("");
    clear($("cards"));
    $("request-json").textContent = "";
    $("response-json").textContent = "";
    $("feedback-json").textContent = "";
  }

  var INDICATORS = { info: "Info", warning: "Warning", critical: "Critical" };

  function renderCards(cards, service) {
    var holder = $("cards");
    clear(holder);
    if (!cards.length) holder.appendChild(el("p", { className: "hint", text: "No cards: nothing to say about these orders." }));
    cards.forEach(function (card, index) {
      var indicator = INDICATORS[card.indicator] ? card.indicator : "info";
      var article = el("article", { className: "card " + indicator, "aria-labelledby": "card-title-" + index, "data-uuid": card.uuid || "" });
      article.appendChild(el("h3", { id: "card-title-" + index }, [
        el("span", { className: "badge " + indicator, text: INDICATORS[indicator] }), card.summary || ""
      ]));
      if (card.source && card.source.label) {
        var source = el("p", { className: "source" }, ["Source: "]);
        var href = card.source.url && /^https?:\/\//i.test(card.source.url) ? card.source.url : null;
        source.appendChild(href ? el("a", { href: href, target: "_blank", rel: "noopener noreferrer", text: card.source.label })
          : document.createTextNode(card.source.label));
        article.appendChild(source);
      }
      if (card.detail) {
        var detail = el("div", { className: "detail" });
        detail.appendChild(window.SandboxMarkdown.render(card.detail));
        article.appendChild(detail);
      }
      (card.links || []).forEach(function (link) {
        if (!/^https?:\/\//i.test(link.url || "")) return;
        article.appendChild(el("p", {}, [
          el("a", { href: link.url, target: "_blank", rel: "noopener noreferrer", text: link.label || link.url }),
          el("span", { className: "code", text: link.type === "smart" ? " (SMART app)" : "" })
        ]));
      });
      var accepts = []; // the card's Accept buttons: at-most-one lets only one of them be pressed
      if (card.selectionBehavior === "at-most-one" && (card.suggestions || []).length > 1) {
        article.appendChild(el("p", { className: "hint selection-note", text: "Accept at most one of these suggestions." }));
      }
      (card.suggestions || []).forEach(function (suggestion) {
        article.appendChild(suggestionBlock(card, suggestion, service, accepts));
      });
      if ((card.overrideReasons || []).length) article.appendChild(overrideBlock(card, index, service));
      holder.appendChild(article);
    });
  }

  function actionWords(action) {
    var target = action.resource ? orderWords(action.resource) : action.resourceId || "";
    return action.type + " " + target + (action.description ? ": " + action.description : "");
  }

  function suggestionBlock(card, suggestion, service, accepts) {
    var block = el("div", { className: "suggestion" });
    block.appendChild(el("p", {}, [el("strong", { text: "Suggestion: " }), suggestion.label || ""]));
    var actions = el("ul", {});
    (suggestion.actions || []).forEach(function (action) { actions.appendChild(el("li", { text: actionWords(action) })); });
    if (actions.firstChild) block.appendChild(actions);
    var button = el("button", { type: "button", className: "primary", text: "Accept" });
    button.setAttribute("aria-label", "Accept: " + (suggestion.label || "suggestion"));
    var outcome = el("span", { role: "status" });
    accepts.push({ button: button, outcome: outcome });
    button.addEventListener("click", function () {
      button.disabled = true;
      if (card.selectionBehavior === "at-most-one") {
        // CDS Hooks: the user may choose at most one of the card's suggestions.
        accepts.forEach(function (other) {
          if (other.button === button || other.button.disabled) return;
          other.button.disabled = true;
          other.outcome.textContent = " Not taken: another suggestion of this card was accepted.";
        });
      }
      applyActions(suggestion.actions || []);
      var item = { card: card.uuid, outcome: "accepted", acceptedSuggestions: [{ id: suggestion.uuid }],
        outcomeTimestamp: new Date().toISOString() };
      sendFeedback(service, item, outcome, "Accepted");
    });
    block.appendChild(el("div", { className: "buttons" }, [button, outcome]));
    return block;
  }

  function overrideBlock(card, index, service) {
    var block = el("details", { className: "override" });
    block.appendChild(el("summary", { text: "Override this card" }));
    var select = el("select", { id: "override-reason-" + index });
    card.overrideReasons.forEach(function (reason, n) {
      select.appendChild(el("option", { value: String(n), text: reason.display || reason.code }));
    });
    var comment = el("input", { type: "text", id: "override-comment-" + index, maxlength: "500" });
    var button = el("button", { type: "button", text: "Override" });
    button.setAttribute("aria-label", "Override: " + (card.summary || "card"));
    var outcome = el("span", { role: "status" });
    button.addEventListener("click", function () {
      button.disabled = true;
      var reason = card.overrideReasons[Number(select.value)];
      var coding = { system: reason.system, code: reason.code };
      if (reason.display) coding.display = reason.display;
      var overrideReason = { reason: coding };
      if (comment.value.trim()) overrideReason.userComment = comment.value.trim();
      var item = { card: card.uuid, outcome: "overridden", overrideReason: overrideReason,
        outcomeTimestamp: new Date().toISOString() };
      sendFeedback(service, item, outcome, "Overridden");
    });
    block.appendChild(el("label", { for: "override-reason-" + index, text: "Override reason" }));
    block.appendChild(select);
    block.appendChild(el("label", { for: "override-comment-" + index, text: "Comment (optional)" }));
    block.appendChild(comment);
    block.appendChild(el("div", { className: "buttons" }, [button, outcome]));
    return block;
  }

  function sendFeedback(service, item, outcome, word) {
    var body = { feedback: [item] };
    $("feedback-json").textContent = shown(body);
    outcome.textContent = " sending feedback ...";
    return mint(service.id, true).then(function (token) {
      return postJson("/cds-services/" + service.id + "/feedback", body, token);
    }).then(function (answer) {
      outcome.className = answer.ok ? "done" : "failed";
      outcome.textContent = answer.ok ? " " + word + "; feedback recorded (HTTP " + answer.status + ")."
        : " Feedback refused: " + problem(answer.body, answer.status);
    }).catch(function (error) {
      outcome.className = "failed";
      outcome.textContent = " Feedback failed: " + error.message;
    });
  }

  function applyActions(actions) {
    actions.forEach(function (action) {
      if (action.type === "create" && action.resource) {
        var created = JSON.parse(JSON.stringify(action.resource));
        if (!created.id) created.id = "sandbox-accepted-" + uuid().slice(0, 8);
        state.drafts.push(created);
        state.changed[created.resourceType + "/" + created.id] = "added";
      } else if (action.type === "update" && action.resource) {
        var key = action.resource.resourceType + "/" + action.resource.id;
        var found = false;
        state.drafts = state.drafts.map(function (r) {
          if (r.resourceType + "/" + r.id !== key) return r;
          found = true;
          return action.resource;
        });
        if (!found) state.drafts.push(action.resource);
        state.changed[key] = "updated";
      } else if (action.type === "delete" && action.resourceId) {
        var ids = [].concat(action.resourceId);
        state.drafts = state.drafts.filter(function (r) { return ids.indexOf(r.resourceType + "/" + r.id) < 0; });
      }
    });
    renderDrafts();
  }

  /* ---------- coverage information in words ---------- */

  var EXTENSION = "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information";
  var WORDS = {
    covered: { label: "Covered", covered: "yes", "not-covered": "no", conditional: "only if conditions are met" },
    "pa-needed": { label: "Prior authorization", "auth-needed": "needed", "no-auth": "not needed",
      satisfied: "already satisfied", performpa: "needed, from the performer", conditional: "may be needed" },
    "doc-needed": { label: "Documentation", clinical: "clinical documentation needed", admin: "administrative documentation needed",
      patient: "documentation from the patient needed", conditional: "may be needed" },
    "doc-purpose": { label: "Documentation is for", withpa: "the prior authorization request", withclaim: "the claim",
      withorder: "the order", "retain-doc": "keeping on file", OTH: "another purpose" },
    "info-needed": { label: "Information needed", performer: "the performer", location: "the location",
      timeframe: "the timing", contract: "the contract", "detail-code": "a more detailed code", OTH: "other information" },
    "satisfied-pa-id": { label: "Prior authorization number" },
    "coverage-assertion-id": { label: "Assertion id" },
    reason: { label: "Reason" },
    date: { label: "Date" },
    questionnaire: { label: "Questionnaire to complete" },
    coverage: { label: "Coverage" },
    "billingCode": { label: "Billing code" }
  };

  function subValue(sub) {
    if (sub.valueCode !== undefined) return sub.valueCode;
    if (sub.valueString !== undefined) return sub.valueString;
    if (sub.valueReference) return sub.valueReference.reference || sub.valueReference.display || "";
    if (sub.valueCodeableConcept) {
      var c = sub.valueCodeableConcept;
      return c.text || (c.coding || []).map(function (x) { return x.display || x.code; }).join(", ");
    }
    if (sub.valueCoding) return sub.valueCoding.display || sub.valueCoding.code;
    if (sub.valueCanonical !== undefined) return sub.valueCanonical;
    if (sub.valueDate !== undefined) return sub.valueDate;
    return "";
  }

  function servedForm(canonical) {
    // A documentation form's canonical (url|version) names a Questionnaire this service serves at
    // /fhir/Questionnaire/{id}: the address to open it at, else null.
    var base = state.setup.questionnaireBase + "/";
    var id = canonical.split("|")[0];
    if (id.indexOf(base) !== 0) return null;
    id = id.slice(base.length);
    return /^[A-Za-z0-9\-.]{1,64}$/.test(id) ? "/fhir/Questionnaire/" + id : null;
  }

  function formEntry(canonical, address, read) {
    // The form a canonical (url|version) names, linked only once the form this service serves at
    // `address` is that version: an answer from another release of the service (or a form changed
    // since the call) names another set of questions, and the link would open the wrong one.
    var entry = el("dd", { text: canonical + " (checking the version served here ...)" });
    var version = canonical.indexOf("|") >= 0 ? canonical.slice(canonical.indexOf("|") + 1) : null;
    if (!read[address]) read[address] = getJson(address);
    read[address].then(function (form) {
      clear(entry);
      if (version === null || form.version === version) {
        entry.appendChild(el("a", { href: address, target: "_blank", rel: "noopener noreferrer", text: canonical }));
        if (version === null) entry.appendChild(document.createTextNode(" (no version named; served: " + form.version + ")"));
      } else {
        entry.className = "failed";
        entry.textContent = canonical + ": this service holds version " + form.version + " of this form, not " +
          version + "; call the hook again for the current one.";
      }
    }).catch(function (error) {
      entry.className = "failed";
      entry.textContent = canonical + ": not served here (" + error.message + ").";
    });
    return entry;
  }

  function renderCoverage(actions) {
    var holder = $("coverage-info");
    clear(holder);
    var shownAny = false;
    var read = {}; // each form's address once per answer
    actions.forEach(function (action) {
      var resource = action.resource || {};
      (resource.extension || []).filter(function (e) { return e.url === EXTENSION; }).forEach(function (ext) {
        shownAny = true;
        var item = el("div", { className: "coverage-item" });
        item.appendChild(el("p", {}, [el("strong", { text: orderWords(resource) }),
          el("span", { className: "code", text: " (" + resource.resourceType + "/" + resource.id + ", " + action.type + ")" })]));
        var list = el("dl", {});
        (ext.extension || []).forEach(function (sub) {
          var words = WORDS[sub.url] || { label: sub.url };
          var value = subValue(sub);
          var known = sub.url === "coverage" && state.coverages[String(value).replace(/^Coverage\//, "")];
          if (known) value = known.payer + " (" + value + ")";
          list.appendChild(el("dt", { text: words.label }));
          var form = sub.url === "questionnaire" && servedForm(String(value));
          list.appendChild(form ? formEntry(String(value), form, read) : el("dd", { text: words[value] || value }));
        });
        item.appendChild(list);
        holder.appendChild(item);
      });
    });
    if (!shownAny) holder.appendChild(el("p", { className: "hint", text: "No coverage information in this answer." }));
  }

  /* ---------- start ---------- */

  document.addEventListener("DOMContentLoaded", function () {
    $("patient").addEventListener("change", choosePatient);
    $("coverage").addEventListener("change", chooseCoverage);
    $("kits").addEventListener("change", choiceNotDrafted);
    $("infusate").addEventListener("change", choiceNotDrafted);
    $("place-orders").addEventListener("click", placeOrders);
    $("reload-patients").addEventListener("click", reloadPatients);
    loadSetup().then(loadPatients).catch(function (error) { setStatus("setup-status", error.message, true); });
  });
})();
