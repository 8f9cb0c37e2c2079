/*
 * A small Markdown renderer for card details (CommonMark's everyday subset: paragraphs, line
 * breaks, headings, bullet and numbered lists (a numbered one from its first item's number, an item's
 * indented lines inside it), **strong**, *em* / _em_, `code`, [links](url), and
 * backslash escapes: "\[" is a "[", as the service escapes the chart's words in a card).
 *
 * Safe by construction: it never parses HTML and never assigns innerHTML. Every piece of the
 * card's text becomes a DOM text node (so "<script>" shows as those characters), elements are
 * created only for the Markdown it recognises, and a link keeps its href only when it is http(s)
 * or a path on this service (javascript:, data: and the like become plain text).
 */
(function () {
  "use strict";

  var INLINE = /(`[^`\n]+`)|(\*\*[^\n]+?\*\*)|(\[[^\]\n]+\]\([^)\s]+\))|(\*[^*\s\n][^*\n]*?\*)|(_[^_\s\n][^_\n]*?_)|(\\[!-\/:-@[-`{-~])/g;

  // a path on this service: one "/" followed by neither another nor a backslash, which a browser reads
  // as a slash ("/\evil.example" goes to http://evil.example; review26a)
  function safeHref(url) {
    if (/^https?:\/\//i.test(url)) return url;
    if (/^\/(?![\/\\])/.test(url)) return url;
    return null;
  }

  function isWordChar(ch) {
    return ch !== undefined && /[A-Za-z0-9]/.test(ch);
  }

  function inline(text, parent) {
    var last = 0;
    var match;
    var pattern = new RegExp(INLINE.source, "g");
    while ((match = pattern.exec(text)) !== null) {
      var token = match[0];
      if (match[5] && (isWordChar(text[match.index - 1]) || isWordChar(text[match.index + token.length]))) {
        continue; // snake_case words are not emphasis
      }
      if (match.index > last) parent.appendChild(document.createTextNode(text.slice(last, match.index)));
      var node;
      if (match[6]) {
        node = document.createTextNode(token.slice(1)); // an escaped character is itself
      } else if (match[1]) {
        node = document.createElement("code");
        node.textContent = token.slice(1, -1);
      } else if (match[2]) {
        node = document.createElement("strong");
        inline(token.slice(2, -2), node);
      } else if (match[3]) {
        var split = token.lastIndexOf("](");
        var label = token.slice(1, split);
        var href = safeHref(token.slice(split + 2, -1));
        if (href === null) {
          node = document.createTextNode(token);
        } else {
          node = document.createElement("a");
          node.setAttribute("href", href);
          node.setAttribute("target", "_blank");
          node.setAttribute("rel", "noopener noreferrer");
          inline(label, node);
        }
      } else {
        node = document.createElement("em");
        inline(token.slice(1, -1), node);
      }
      parent.appendChild(node);
      last = match.index + token.length;
    }
    if (last < text.length) parent.appendChild(document.createTextNode(text.slice(last)));
  }

  function lines(text, parent) {
    text.split("\n").forEach(function (line, i) {
      if (i > 0) parent.appendChild(document.createElement("br"));
      inline(line.replace(/\s+$/, ""), parent);
    });
  }

  // an item: its indentation, its marker (a number's digits apart), the spaces after it, its text
  var BULLET = /^( *)([-*+])( +)(.*)$/;
  var NUMBERED = /^( *)(\d{1,9})[.)]( +)(.*)$/;
  var HEADING = /^(#{1,6})\s+(.*)$/;

  function indentOf(row) {
    return /^ */.exec(row)[0].length;
  }

  /*
   * A list of the items of one kind and indentation from rows[i] on, as CommonMark reads it: a numbered
   * list starts at its first item's number (a card numbers its steps on across groups: "**Document**"
   * then "2. …"), and the lines indented to an item's text are inside that item (a step's sub-items),
   * the list going on after them. Returns the list and the row after it.
   */
  function list(rows, i, kind) {
    var first = kind.exec(rows[i]);
    var numbered = kind === NUMBERED;
    var node = document.createElement(numbered ? "ol" : "ul");
    if (numbered && parseInt(first[2], 10) !== 1) node.setAttribute("start", String(parseInt(first[2], 10)));
    var indent = first[1].length;
    var item;
    while (i < rows.length && (item = kind.exec(rows[i])) !== null && item[1].length === indent) {
      var li = document.createElement("li");
      inline(item[4], li);
      i += 1;
      var under = item[1].length + item[2].length + (numbered ? 1 : 0) + item[3].length;
      var inside = [];
      while (i < rows.length && !/^\s*$/.test(rows[i]) && indentOf(rows[i]) >= under) {
        inside.push(rows[i].slice(under));
        i += 1;
      }
      if (inside.length) li.appendChild(render(inside.join("\n")));
      node.appendChild(li);
    }
    return { node: node, next: i };
  }

  function render(markdown) {
    var fragment = document.createDocumentFragment();
    var source = String(markdown === undefined || markdown === null ? "" : markdown).replace(/\r\n?/g, "\n");
    var rows = source.split("\n");
    var i = 0;
    while (i < rows.length) {
      var row = rows[i];
      if (/^\s*$/.test(row)) { i += 1; continue; }
      var heading = HEADING.exec(row);
      if (heading) {
        var level = Math.min(6, heading[1].length + 3); // inside a card: h4 and below
        var h = document.createElement("h" + level);
        inline(heading[2], h);
        fragment.appendChild(h);
        i += 1;
        continue;
      }
      var kind = BULLET.test(row) ? BULLET : NUMBERED.test(row) ? NUMBERED : null;
      if (kind) {
        var made = list(rows, i, kind);
        fragment.appendChild(made.node);
        i = made.next;
        continue;
      }
      var paragraph = [];
      while (i < rows.length && !/^\s*$/.test(rows[i]) && !HEADING.test(rows[i]) &&
             !BULLET.test(rows[i]) && !NUMBERED.test(rows[i])) {
        paragraph.push(rows[i]);
        i += 1;
      }
      var p = document.createElement("p");
      lines(paragraph.join("\n"), p);
      fragment.appendChild(p);
    }
    return fragment;
  }

  window.SandboxMarkdown = { render: render };
})();
