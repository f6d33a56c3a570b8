import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  htmlToMarkdown,
  htmlToText,
  markdownToHtml,
  pillHref,
  pillHtml,
  pillUserId,
  textToHtml,
} from "../../../src/formatting/index.js";

describe("htmlToText", () => {
  it("turns lists, line breaks, quotes, rules and paragraphs into lines", () => {
    assert.equal(htmlToText("one<br>two<br/>three"), "one\ntwo\nthree");
    assert.equal(htmlToText("<p>first</p><p>second</p>"), "first\n\nsecond");
    assert.equal(htmlToText("<ul><li>a</li><li>b</li></ul>"), "- a\n- b");
    assert.equal(
      htmlToText('<ol start="3"><li>c</li><li>d<ul><li>e</li></ul></li></ol>'),
      "3. c\n4. d\n   - e",
    );
    assert.equal(htmlToText("<blockquote>quoted<br>twice</blockquote>reply"), "> quoted\n> twice\nreply");
    assert.equal(htmlToText("above<hr>below"), "above\n---\nbelow");
    assert.equal(htmlToText("<h1>Title</h1>text"), "Title\ntext");
    assert.equal(htmlToText("<pre><code>  indented\n  code\n</code></pre>"), "  indented\n  code");
    assert.equal(
      htmlToText("<table><tr><th>a</th><th>b</th></tr><tr><td>1</td><td>2</td></tr></table>"),
      "a | b\n1 | 2",
    );
  });

  it("writes links as text (url) unless the text is the url, images as their alt", () => {
    assert.equal(htmlToText('<a href="https://e.org">site</a>'), "site (https://e.org)");
    assert.equal(htmlToText('<a href="https://e.org">https://e.org</a>'), "https://e.org");
    assert.equal(htmlToText('<a href="mailto:a@e.org">a@e.org</a>'), "a@e.org");
    assert.equal(htmlToText('<img src="mxc://e.org/x" alt="a cat">'), "a cat");
    assert.equal(htmlToText('<a href="javascript:alert(1)">bad</a>'), "bad");
  });

  it("turns pills into what the mention hook says, or their text", () => {
    const html =
      'hi <a href="https://matrix.to/#/@bob:e.org">Bob</a> and <a href="https://matrix.to/#/%40carol%3Ae.org">Carol</a>';
    assert.equal(htmlToText(html), "hi Bob and Carol");
    assert.equal(
      htmlToText(html, { mention: (userId, text) => `<${userId}|${text}>` }),
      "hi <@bob:e.org|Bob> and <@carol:e.org|Carol>",
    );
  });

  it("decodes entities, collapses whitespace and drops what the sanitiser drops", () => {
    assert.equal(htmlToText("a &amp; b &lt;c&gt;\n   d<script>x</script>"), "a & b <c> d");
  });
});

describe("textToHtml", () => {
  it("escapes and keeps line breaks", () => {
    assert.equal(textToHtml('<b>"x" & y</b>\nline'), "&lt;b&gt;&quot;x&quot; &amp; y&lt;/b&gt;<br>line");
    assert.equal(htmlToText(textToHtml("a <b>\nc & d")), "a <b>\nc & d");
  });
});

describe("pills", () => {
  it("reads and writes matrix.to user links", () => {
    assert.equal(pillUserId("https://matrix.to/#/@bob:e.org"), "@bob:e.org");
    assert.equal(pillUserId("https://matrix.to/#/%40bob%3Ae.org?via=e.org"), "@bob:e.org");
    assert.equal(pillUserId("https://matrix.to/#/#room:e.org"), undefined);
    assert.equal(pillUserId("https://example.org/#/@bob:e.org"), undefined);
    assert.equal(pillHref("@b ob:e.org"), "https://matrix.to/#/@b%20ob:e.org");
    assert.equal(pillHtml("@bob:e.org", "<Bob>"), '<a href="https://matrix.to/#/@bob:e.org">&lt;Bob&gt;</a>');
  });
});

describe("markdownToHtml", () => {
  it("formats inline markup, leaving code, URLs and words with underscores alone", () => {
    assert.equal(
      markdownToHtml("**bold** *it* _it_ ~~gone~~ `a*b*` snake_case_name"),
      "<strong>bold</strong> <em>it</em> <em>it</em> <del>gone</del> <code>a*b*</code> snake_case_name",
    );
    assert.equal(
      markdownToHtml("see [the docs](https://e.org/a_b) or https://e.org/x_y_z."),
      'see <a href="https://e.org/a_b">the docs</a> or <a href="https://e.org/x_y_z">https://e.org/x_y_z</a>.',
    );
    assert.equal(markdownToHtml("\\*not italic\\*"), "*not italic*");
  });

  it("formats blocks: code fences, quotes, lists, headings, paragraphs", () => {
    assert.equal(
      markdownToHtml("```ts\nconst a = 1 < 2;\n```"),
      '<pre><code class="language-ts">const a = 1 &lt; 2;</code></pre>',
    );
    assert.equal(
      markdownToHtml("> quoted\n> more\n\nanswer"),
      "<blockquote>quoted<br>more</blockquote><p>answer</p>",
    );
    assert.equal(markdownToHtml("- a\n- b"), "<ul><li>a</li><li>b</li></ul>");
    assert.equal(markdownToHtml("3. c\n4. d"), '<ol start="3"><li>c</li><li>d</li></ol>');
    assert.equal(markdownToHtml("# Title\nline one\nline two"), "<h1>Title</h1><p>line one<br>line two</p>");
  });

  it("never produces unsafe HTML", () => {
    assert.equal(markdownToHtml("[x](javascript:alert(1))"), "[x](javascript:alert(1))");
    assert.equal(markdownToHtml("<script>alert(1)</script>"), "&lt;script&gt;alert(1)&lt;/script&gt;");
    assert.equal(
      markdownToHtml('[x](https://e.org/"onclick=alert(1))'),
      '<a href="https://e.org/&#34;onclick=alert(1">x</a>)',
    );
    assert.doesNotMatch(markdownToHtml("`<img src=x onerror=alert(1)>`"), /<img/);
  });
});

describe("htmlToMarkdown and round trips", () => {
  const MARKDOWN = [
    "**bold** and *italic* ~~gone~~ `code`",
    "> quote\n> more\n\ntext",
    "- a\n- b\n\n1. x\n2. y",
    "[link](https://e.org/a_b) https://x.org/a_b_c",
    "```js\nlet a = 1 < 2;\n```",
    "# Title\n\npara one\nline two",
    "snake_case and 2 \\* 3 \\[not a link\\]",
    "\\- not a list\n\\> not a quote",
  ];

  it("markdown -> HTML -> markdown gives the markdown back", () => {
    for (const md of MARKDOWN) assert.equal(htmlToMarkdown(markdownToHtml(md)), md, md);
  });

  it("HTML -> markdown -> HTML gives the HTML back", () => {
    const HTML = [
      "<strong>b</strong> <em>i</em> <del>s</del> <code>c</code>",
      "<blockquote>q</blockquote><p>a * b _c_ [d]</p>",
      '<ol start="2"><li>two</li><li>three</li></ol>',
      '<pre><code class="language-py">print("x")\nif a &lt; b: pass</code></pre>',
      '<a href="https://e.org">e</a> <a href="https://e.org">https://e.org</a>',
      "<h2>Head</h2><hr><p>- dash<br>&gt; gt</p>",
    ];
    for (const html of HTML) assert.equal(markdownToHtml(htmlToMarkdown(html)), html, html);
  });

  it("maps the HTML-only tags to their markup", () => {
    assert.equal(htmlToMarkdown("<b>b</b><i>i</i><strike>s</strike><u>u</u>"), "**b***i*~~s~~u");
    assert.equal(htmlToMarkdown("<p>a</p><script>x</script><p>b</p>"), "a\n\nb");
  });
});
