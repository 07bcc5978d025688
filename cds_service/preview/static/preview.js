/* Card preview page: talks only to this service (same origin), renders cards like an EHR. */
(function () {
  'use strict';

  var INDICATOR_TEXT = { critical: 'Critical', warning: 'Warning', info: 'Info' };
  var services = [];   // discovery entries
  var scenarios = [];  // fixture scenarios
  var cardCounter = 0;

  function $(id) { return document.getElementById(id); }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === 'text') { node.textContent = attrs[key]; }
      else if (key === 'className') { node.className = attrs[key]; }
      else { node.setAttribute(key, attrs[key]); }
    });
    (children || []).forEach(function (child) { if (child) { node.appendChild(child); } });
    return node;
  }

  function safeLink(url, label) {
    if (typeof url === 'string' && window.B12Markdown.isSafeUrl(url)) {
      return el('a', { href: url, rel: 'noopener noreferrer', target: '_blank', text: label || url });
    }
    return el('span', { text: label || '' });
  }

  function pretty(value) {
    try { return JSON.stringify(value, null, 2); } catch (e) { return String(value); }
  }

  async function readBody(response) {
    var text = await response.text();
    try { return JSON.parse(text); } catch (e) { return text; }
  }

  async function getJson(url) {
    var response = await fetch(url, { headers: { Accept: 'application/json' }, credentials: 'same-origin' });
    var body = await readBody(response);
    if (!response.ok) { throw new Error(describeError(response.status, body)); }
    return body;
  }

  async function postJson(url, body) {
    var started = performance.now();
    var response = await fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify(body),
      credentials: 'same-origin'
    });
    var parsed = await readBody(response);
    return { status: response.status, body: parsed, ms: Math.round(performance.now() - started) };
  }

  function describeError(status, body) {
    var issues = body && body.resourceType === 'OperationOutcome' && Array.isArray(body.issue) ? body.issue : [];
    var text = issues.map(function (i) { return i.diagnostics || i.code; }).filter(Boolean).join('; ');
    return 'HTTP ' + status + (text ? ': ' + text : '');
  }

  function serviceForHook(hook) {
    return services.filter(function (s) { return s.hook === hook; })[0];
  }

  function setBusy(busy) {
    $('results').setAttribute('aria-busy', busy ? 'true' : 'false');
    ['run-fixture', 'run-paste'].forEach(function (id) {
      var button = $(id);
      if (busy) { button.dataset.wasDisabled = button.disabled ? '1' : ''; button.disabled = true; }
      else { button.disabled = button.dataset.wasDisabled === '1'; }
    });
    if (busy) { $('status').textContent = 'Evaluating…'; }
  }

  function showError(message) {
    var box = $('error');
    box.textContent = message;
    box.hidden = !message;
  }

  function clearResults() {
    showError('');
    $('cards').replaceChildren();
    $('evidence').replaceChildren();
  }

  // --- cards ---------------------------------------------------------------------------------------

  function renderCard(card) {
    var n = ++cardCounter;
    var indicator = INDICATOR_TEXT[card.indicator] ? card.indicator : 'info';
    var topic = (card.source && card.source.topic) || {};
    var summaryId = 'card-' + n + '-summary';
    var article = el('article', {
      className: 'cds-card cds-card--' + indicator,
      'aria-labelledby': summaryId,
      'data-indicator': card.indicator || '',
      'data-topic': topic.code || ''
    });
    article.appendChild(el('div', { className: 'cds-card__header' }, [
      el('span', { className: 'cds-card__indicator', text: INDICATOR_TEXT[indicator] }),
      el('h3', { className: 'cds-card__summary', id: summaryId, text: card.summary || '' })
    ]));
    if (card.detail) {
      var detail = el('div', { className: 'cds-card__detail' });
      detail.innerHTML = window.B12Markdown.render(card.detail);  // escaped first, see markdown.js
      article.appendChild(detail);
    }
    if (card.source) {
      var source = el('p', { className: 'cds-card__source' });
      source.appendChild(document.createTextNode('Source: '));
      source.appendChild(card.source.url ? safeLink(card.source.url, card.source.label)
        : el('span', { text: card.source.label || '' }));
      if (topic.code) {
        source.appendChild(document.createTextNode(' · Topic: '));
        source.appendChild(el('span', { className: 'cds-card__topic', text: topic.display || topic.code }));
      }
      article.appendChild(source);
    }
    var accepted = el('output', { className: 'cds-card__accepted', 'aria-live': 'polite' });
    if (Array.isArray(card.suggestions) && card.suggestions.length) {
      var group = el('div', { className: 'cds-card__suggestions', role: 'group', 'aria-label': 'Suggestions' });
      card.suggestions.forEach(function (suggestion) {
        var button = el('button', {
          type: 'button',
          className: 'cds-suggestion',
          'data-recommended': suggestion.isRecommended ? 'true' : 'false',
          text: suggestion.label || 'Suggestion'
        });
        button.addEventListener('click', function () { acceptSuggestion(accepted, suggestion); });
        group.appendChild(button);
      });
      article.appendChild(group);
      if (card.selectionBehavior) {
        article.appendChild(el('p', { className: 'cds-card__meta',
          text: 'Selection: ' + (card.selectionBehavior === 'any' ? 'any number of suggestions' : 'at most one suggestion') }));
      }
    }
    if (Array.isArray(card.links) && card.links.length) {
      var list = el('ul', { className: 'cds-card__links', 'aria-label': 'Links' });
      card.links.forEach(function (link) {
        var item = el('li');
        if (link.type === 'smart') {
          item.textContent = (link.label || link.url) + ' (SMART app link: not launched from the preview)';
        } else {
          item.appendChild(safeLink(link.url, link.label));
        }
        list.appendChild(item);
      });
      article.appendChild(list);
    }
    if (Array.isArray(card.overrideReasons) && card.overrideReasons.length) {
      var reasons = el('details', { className: 'cds-card__overrides' }, [
        el('summary', { text: 'Override reasons offered on dismiss (' + card.overrideReasons.length + ')' })
      ]);
      var ul = el('ul');
      card.overrideReasons.forEach(function (reason) {
        ul.appendChild(el('li', { text: (reason.display || reason.code) + ' (' + reason.code + ')' }));
      });
      reasons.appendChild(ul);
      article.appendChild(reasons);
    }
    article.appendChild(accepted);
    return article;
  }

  function acceptSuggestion(output, suggestion) {
    var actions = Array.isArray(suggestion.actions) ? suggestion.actions : [];
    var text = 'Accepted in the preview (nothing is ordered): ' + (suggestion.label || '') + '. ' +
      (actions.length ? actions.map(function (a) { return a.type + ': ' + (a.description || ''); }).join('; ')
        : 'No actions.');
    output.textContent = text;
  }

  function evidenceOf(detail) {
    // the card's evidence table: from its header row to the first line that is not a table row
    var lines = String(detail || '').split('\n');
    var start = lines.findIndex(function (l) { return /^\| What \|/.test(l.trim()); });
    if (start < 0) { return null; }
    var end = start;
    while (end < lines.length && /^\|/.test(lines[end].trim())) { end++; }
    return lines.slice(start, end).join('\n').trim();
  }

  function renderEvidence(cards) {
    var box = $('evidence');
    if (!cards.length) { box.appendChild(el('p', { text: 'No cards, so no evidence to show.' })); return; }
    cards.forEach(function (card) {
      var topic = (card.source && card.source.topic && card.source.topic.code) || 'card';
      var item = el('div', { className: 'evidence-item', 'data-topic': topic }, [
        el('h3', { text: (INDICATOR_TEXT[card.indicator] || card.indicator) + ' · ' + topic + ': ' + (card.summary || '') })
      ]);
      var evidence = evidenceOf(card.detail);
      if (evidence) {
        var body = el('div');
        body.innerHTML = window.B12Markdown.render(evidence);  // escaped first, see markdown.js
        item.appendChild(body);
      } else {
        item.appendChild(el('p', { text: 'This card lists no evidence table.' }));
      }
      box.appendChild(item);
    });
  }

  function showExchange(label, request, status, response, ms, note) {
    clearResults();
    $('raw-request-label').textContent = 'Request: ' + label;
    $('raw-request').textContent = pretty(request);
    $('raw-response-label').textContent = 'Response: HTTP ' + status + (ms != null ? ' in ' + ms + ' ms' : '');
    $('raw-response').textContent = pretty(response);
    var cards = status === 200 && response && Array.isArray(response.cards) ? response.cards : [];
    if (status !== 200) {
      showError(describeError(status, response));
    }
    cards.forEach(function (card) { $('cards').appendChild(renderCard(card)); });
    renderEvidence(cards);
    var counts = cards.map(function (c) { return c.indicator; });
    var summary = status === 200
      ? cards.length + (cards.length === 1 ? ' card' : ' cards') + ' from ' + label +
        (cards.length ? ' (' + counts.join(', ') + ')' : ': no advice for this patient') + '.'
      : 'The service answered HTTP ' + status + ' (' + label + ').';
    $('status').textContent = summary + (note ? ' ' + note : '');
  }

  // --- actions -------------------------------------------------------------------------------------

  async function callService(serviceId, request, note) {
    var url = '/cds-services/' + encodeURIComponent(serviceId);
    var result = await postJson(url, request);
    showExchange('POST ' + url, request, result.status, result.body, result.ms, note);
  }

  async function runFixture(event) {
    event.preventDefault();
    var id = $('scenario').value;
    if (!id) { return; }
    setBusy(true);
    try {
      var built = await getJson('/preview/api/scenarios/' + encodeURIComponent(id));
      await callService(built.serviceId, built.request);
    } catch (err) {
      clearResults();
      showError(err.message);
      $('status').textContent = 'The fixture could not be evaluated.';
    } finally {
      setBusy(false);
    }
  }

  async function runPaste(event) {
    event.preventDefault();
    var text = $('paste').value.trim();
    var parsed;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      clearResults();
      showError('The pasted text is not valid JSON: ' + err.message);
      $('status').textContent = 'Nothing was sent.';
      $('paste').focus();
      return;
    }
    setBusy(true);
    try {
      if (parsed && parsed.resourceType === 'Bundle') {
        var hook = $('hook').value;
        var result = await postJson('/preview/api/evaluate', { bundle: parsed, hook: hook });
        if (result.status !== 200) {
          clearResults();
          showError(describeError(result.status, result.body));
          $('status').textContent = 'The Bundle could not be turned into a ' + hook + ' request.';
          return;
        }
        var data = result.body;
        showExchange('POST /cds-services/' + data.serviceId, data.request, data.status, data.response, result.ms,
          '(Request built from the pasted Bundle and evaluated by the service.)');
      } else if (parsed && typeof parsed === 'object' && typeof parsed.hook === 'string') {
        var service = serviceForHook(parsed.hook);
        if (!service) {
          clearResults();
          showError('This service has no CDS service for hook "' + parsed.hook + '".');
          $('status').textContent = 'Nothing was sent.';
          return;
        }
        var note = '';
        if ($('hook').value !== parsed.hook) {
          $('hook').value = parsed.hook;
          note = '(Sent to the ' + parsed.hook + ' service, the hook named in the request.)';
        }
        await callService(service.id, parsed, note);
      } else {
        clearResults();
        showError('Paste a CDS Hooks request (with "hook") or a FHIR Bundle (resourceType "Bundle").');
        $('status').textContent = 'Nothing was sent.';
      }
    } catch (err) {
      clearResults();
      showError(err.message);
      $('status').textContent = 'The request failed.';
    } finally {
      setBusy(false);
    }
  }

  function renderCheck(report) {
    var box = $('check-results');
    box.replaceChildren();
    $('check-status').textContent = report.kind + ': ' + report.resources + ' resource(s), ' + report.problems +
      ' problem(s), ' + report.leftOut + ' left out by the service.';
    (report.requestProblems || []).forEach(function (text) {
      box.appendChild(el('p', { className: 'error', text: 'Request: ' + text }));
    });
    if (!report.results.length) { return; }
    var head = el('tr', {}, ['Location', 'Resource', 'Service', 'Path', 'Problem'].map(function (h) {
      return el('th', { scope: 'col', text: h });
    }));
    var body = el('tbody');
    report.results.forEach(function (r) {
      var problems = r.problems.length ? r.problems : [{ path: '', message: '' }];
      problems.forEach(function (p) {
        body.appendChild(el('tr', {}, [r.location, r.resource, r.service, p.path, p.message].map(function (v) {
          return el('td', { text: v });
        })));
      });
    });
    box.appendChild(el('table', { className: 'check-table' }, [el('thead', {}, [head]), body]));
  }

  async function runCheck() {
    var parsed;
    try {
      parsed = JSON.parse($('paste').value.trim());
    } catch (err) {
      $('check-results').replaceChildren();
      $('check-status').textContent = 'The pasted text is not valid JSON: ' + err.message;
      return;
    }
    $('check-status').textContent = 'Checking…';
    try {
      var result = await postJson('/preview/api/check', parsed);
      if (result.status !== 200) {
        $('check-results').replaceChildren();
        $('check-status').textContent = describeError(result.status, result.body);
        return;
      }
      renderCheck(result.body);
      $('check').focus();
    } catch (err) {
      $('check-status').textContent = 'The check failed: ' + err.message;
    }
  }

  function describeScenario() {
    var chosen = scenarios.filter(function (s) { return s.id === $('scenario').value; })[0];
    if (!chosen) { $('scenario-description').textContent = ''; return; }
    var expected = chosen.expect.length
      ? 'Expected: ' + chosen.expect.map(function (e) { return e.topic + ' (' + e.indicator + ')'; }).join(', ') + '.'
      : 'Expected: no card.';
    $('scenario-description').textContent = chosen.description + ' ' + expected;
  }

  async function init() {
    $('fixture-form').addEventListener('submit', runFixture);
    $('paste-form').addEventListener('submit', runPaste);
    $('run-check').addEventListener('click', runCheck);
    $('scenario').addEventListener('change', describeScenario);
    try {
      var discovery = await getJson('/cds-services');
      services = discovery.services || [];
      var hookSelect = $('hook');
      services.forEach(function (s) {
        hookSelect.appendChild(el('option', { value: s.hook, text: s.hook + ' (' + s.id + ')' }));
      });
      if (serviceForHook('patient-view')) { hookSelect.value = 'patient-view'; }
    } catch (err) {
      showError('Service discovery failed: ' + err.message);
    }
    var select = $('scenario');
    try {
      var listing = await getJson('/preview/api/scenarios');
      scenarios = listing.scenarios || [];
      select.replaceChildren();
      if (!scenarios.length) {
        select.appendChild(el('option', { value: '', text: 'No fixtures in this installation: paste JSON instead' }));
        return;
      }
      var groups = {};
      scenarios.forEach(function (s) {
        if (!groups[s.hook]) {
          groups[s.hook] = el('optgroup', { label: s.hook });
          select.appendChild(groups[s.hook]);
        }
        var topics = s.expect.map(function (e) { return e.topic; }).join(', ') || 'no card';
        groups[s.hook].appendChild(el('option', { value: s.id, text: s.patient + ' · ' + s.hook + ' → ' + topics }));
      });
      select.disabled = false;
      $('run-fixture').disabled = false;
      describeScenario();
    } catch (err) {
      select.replaceChildren(el('option', { value: '', text: 'Scenarios could not be loaded' }));
      showError('Loading fixture scenarios failed: ' + err.message);
    }
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', init);
  } else {
    init();
  }
})();
