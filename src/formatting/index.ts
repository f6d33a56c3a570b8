// Rich text helpers: Matrix HTML sanitised, and converted to and from plain text and markup.
export { sanitizeHtml } from "./sanitize.js";
export { htmlToText, textToHtml, type HtmlToTextOptions } from "./to-text.js";
export { markdownToHtml, htmlToMarkdown } from "./markdown.js";
export { pillUserId, pillHref, pillHtml } from "./pills.js";
export { escapeHtml, decodeEntities } from "./entities.js";
export type { ParseOptions } from "./tree.js";
export { addPills, type PillTarget } from "./add-pills.js";
export { plainTextOf } from "./plain-text-of.js";
