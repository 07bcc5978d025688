/* A tiny, safe Markdown renderer for CDS Hooks card details (GitHub-flavoured subset).
 *
 * Safety model: the whole input is HTML-escaped FIRST, so no tag or attribute from the input can
 * survive; only the structure this file writes (p, h4-h6, strong, em, code, ul/ol/li, table, a) is
 * HTML. Links are emitted only for absolute http(s) URLs (javascript:, data:, relative... become
 * plain text), with rel="noopener noreferrer". Backslash escapes (\*, \|, \<, ...) are honoured.
 * Supported: paragraphs, ATX headings, bullet and numbered lists, pipe tables, **bold**, *italic*,
 * _italic_, `code`, [label](https://url). No raw HTML, images or autolinks.
 */
(function (global) {
  'use strict';

  var OPEN = '\uE000';
  var CLOSE = '\uE001';
  var LIST_ITEM = /^\s*([-*+]|\d{1,9}[.)])\s+/;
  var SEPARATOR = /^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$/;
  var HEADING = /^(#{1,6})\s+(.*?)\s*#*\s*$/;
  var SAFE_URL = /^https?:\/\/[^\s"'<>`]+$/i;

  function escapeHtml(text) {
    return String(text)
      .replace(/&/g, '&amp;')
      .replace(/</g, '&lt;')
      .replace(/>/g, '&gt;')
      .replace(/"/g, '&quot;')
      .replace(/'/g, '&#39;');
  }

  function isSafeUrl(url) {
    return SAFE_URL.test(url);
  }

  function render(source) {
    var stash = [];
    function keep(html) {
      stash.push(html);
      return OPEN + (stash.length - 1) + CLOSE;
    }
    function restore(text) {
      var pattern = new RegExp(OPEN + '(\\d+)' + CLOSE, 'g');
      for (var round = 0; round < 8 && text.indexOf(OPEN) !== -1; round++) {
        text = text.replace(pattern, function (_, n) { return stash[Number(n)] || ''; });
      }
      return text.replace(/[\uE000\uE001]/g, '');
    }

    function inline(text) {
      // code spans: content kept literally (already escaped)
      text = text.replace(/`([^`\n]+)`/g, function (_, code) { return keep('<code>' + code + '</code>'); });
      // links: only absolute http(s); anything else keeps its label as plain text
      text = text.replace(/\[([^\]\n]*)\]\(([^)\s]+)\)/g, function (_, label, url) {
        var formatted = emphasis(label);
        if (!isSafeUrl(restore(url))) { return formatted; }
        return keep('<a href="' + restore(url) + '" rel="noopener noreferrer" target="_blank">' + formatted + '</a>');
      });
      return emphasis(text);
    }

    function emphasis(text) {
      return text
        .replace(/\*\*(?=\S)([\s\S]*?\S)\*\*/g, '<strong>$1</strong>')
        .replace(/(^|[^\w])__(?=\S)([\s\S]*?\S)__(?!\w)/g, '$1<strong>$2</strong>')
        .replace(/\*(?=[^\s*])([^*]*?[^\s*]|[^\s*])\*/g, '<em>$1</em>')
        .replace(/(^|[^\w])_(?=[^\s_])([^_]*?[^\s_]|[^\s_])_(?!\w)/g, '$1<em>$2</em>');
    }

    function cells(line) {
      var trimmed = line.trim().replace(/^\|/, '').replace(/\|$/, '');
      return trimmed.split('|').map(function (cell) { return cell.trim(); });
    }

    function table(header, rows) {
      var width = header.length;
      function row(values, tag) {
        var out = [];
        for (var c = 0; c < width; c++) {
          out.push('<' + tag + (tag === 'th' ? ' scope="col"' : '') + '>' + inline(values[c] || '') + '</' + tag + '>');
        }
        return '<tr>' + out.join('') + '</tr>';
      }
      return '<div class="md-table"><table><thead>' + row(header, 'th') + '</thead><tbody>' +
        rows.map(function (r) { return row(r, 'td'); }).join('') + '</tbody></table></div>';
    }

    function startsBlock(lines, i) {
      var line = lines[i];
      return HEADING.test(line) || LIST_ITEM.test(line) ||
        (line.indexOf('|') !== -1 && i + 1 < lines.length && SEPARATOR.test(lines[i + 1]));
    }

    var text = String(source == null ? '' : source).replace(/\r\n?/g, '\n').replace(/[\uE000\uE001]/g, '');
    text = escapeHtml(text);
    text = text.replace(/\\(&amp;|&lt;|&gt;|&quot;|&#39;|[!#$%()*+,\-./:;=?@[\\\]^_`{|}~])/g, function (_, ch) {
      return keep(ch);
    });

    var lines = text.split('\n');
    var out = [];
    var i = 0;
    while (i < lines.length) {
      var line = lines[i];
      if (/^\s*$/.test(line)) { i++; continue; }
      var heading = HEADING.exec(line);
      if (heading) {
        var level = Math.min(heading[1].length + 3, 6);
        out.push('<h' + level + '>' + inline(heading[2]) + '</h' + level + '>');
        i++;
        continue;
      }
      if (line.indexOf('|') !== -1 && i + 1 < lines.length && SEPARATOR.test(lines[i + 1])) {
        var header = cells(line);
        var rows = [];
        i += 2;
        while (i < lines.length && lines[i].indexOf('|') !== -1 && !/^\s*$/.test(lines[i])) {
          rows.push(cells(lines[i]));
          i++;
        }
        out.push(table(header, rows));
        continue;
      }
      if (LIST_ITEM.test(line)) {
        var ordered = /^\s*\d/.test(line);
        var items = [];
        while (i < lines.length && LIST_ITEM.test(lines[i])) {
          items.push(lines[i].replace(LIST_ITEM, ''));
          i++;
          while (i < lines.length && /^\s{2,}\S/.test(lines[i]) && !LIST_ITEM.test(lines[i])) {
            items[items.length - 1] += ' ' + lines[i].trim();
            i++;
          }
        }
        var tag = ordered ? 'ol' : 'ul';
        out.push('<' + tag + '>' + items.map(function (item) { return '<li>' + inline(item) + '</li>'; }).join('') +
          '</' + tag + '>');
        continue;
      }
      var paragraph = [line];
      i++;
      while (i < lines.length && !/^\s*$/.test(lines[i]) && !startsBlock(lines, i)) {
        paragraph.push(lines[i]);
        i++;
      }
      out.push('<p>' + inline(paragraph.join('\n')) + '</p>');
    }
    return restore(out.join('\n'));
  }

  global.B12Markdown = { render: render, escapeHtml: escapeHtml, isSafeUrl: isSafeUrl };
})(window);
