/**
 * A plain @xmpp/client session playing a remote XMPP user in tests: joins rooms, talks,
 * changes subject and nick, and records every stanza it receives for assertions.
 */
import { EventEmitter } from "node:events";
import { randomUUID } from "node:crypto";
import { client, xml, type Client, type Element } from "@xmpp/client";
import { DOMAIN, MUC_DOMAIN } from "./prosody.js";

const NS_MUC = "http://jabber.org/protocol/muc";
const NS_MUC_USER = "http://jabber.org/protocol/muc#user";
const NS_MUC_OWNER = "http://jabber.org/protocol/muc#owner";

export class RemoteUser {
  readonly stanzas: Element[] = [];
  private readonly events = new EventEmitter();

  private constructor(
    readonly username: string,
    private readonly xmpp: Client,
  ) {}

  static async connect(service: string, username: string, password: string): Promise<RemoteUser> {
    const xmpp = client({ service, domain: DOMAIN, username, password, resource: `test-${randomUUID()}` });
    const user = new RemoteUser(username, xmpp);
    xmpp.on("error", () => {});
    xmpp.on("stanza", (el: Element) => {
      user.stanzas.push(el);
      user.events.emit("stanza", el);
    });
    // Tests make a new session after a server restart instead.
    xmpp.reconnect.stop();
    await xmpp.start();
    return user;
  }

  /** Resolves with the first stanza (received or future) matching `predicate`; rejects after `timeoutMs`. */
  waitFor(predicate: (el: Element) => boolean, what: string, timeoutMs = 10_000): Promise<Element> {
    const found = this.stanzas.find(predicate);
    if (found) return Promise.resolve(found);
    // A listener (not a loop of once()) sees every stanza, also several parsed in one tick.
    return new Promise((resolve, reject) => {
      const onStanza = (el: Element) => {
        if (!predicate(el)) return;
        clearTimeout(timer);
        this.events.off("stanza", onStanza);
        resolve(el);
      };
      const timer = setTimeout(() => {
        this.events.off("stanza", onStanza);
        const seen = this.stanzas
          .slice(-15)
          .map((s) => s.toString())
          .join("\n  ");
        reject(new Error(`${this.username}: no ${what} within ${timeoutMs} ms; last stanzas:\n  ${seen}`));
      }, timeoutMs);
      this.events.on("stanza", onStanza);
    });
  }

  /** A groupchat message in `room` whose body satisfies `test`. */
  waitForMessage(room: string, test: (body: string, el: Element) => boolean, timeoutMs?: number) {
    return this.waitFor(
      (el) =>
        el.is("message") &&
        el.attrs.type === "groupchat" &&
        (el.attrs.from ?? "").startsWith(`${room}@${MUC_DOMAIN}/`) &&
        el.getChildText("body") !== null &&
        test(el.getChildText("body") ?? "", el),
      `message in ${room}`,
      timeoutMs,
    );
  }

  /** Resolves once `nick` is (or becomes) an occupant of `room`. */
  waitForOccupant(room: string, nick: string, timeoutMs?: number) {
    return this.waitFor(
      (el) =>
        el.is("presence") && el.attrs.from === `${room}@${MUC_DOMAIN}/${nick}` && el.attrs.type === undefined,
      `presence of ${nick} in ${room}`,
      timeoutMs,
    );
  }

  /**
   * Joins `room` as `nick`. If that creates the room, configures it (with `name`, else as an
   * instant room). Resolves once in the room.
   */
  async join(room: string, nick: string, opts: { name?: string } = {}): Promise<void> {
    const jid = `${room}@${MUC_DOMAIN}`;
    const before = this.stanzas.length;
    await this.xmpp.send(xml("presence", { to: `${jid}/${nick}` }, xml("x", { xmlns: NS_MUC })));
    const self = await this.waitFor(
      (el) =>
        this.stanzas.indexOf(el) >= before &&
        el.is("presence") &&
        el.attrs.from === `${jid}/${nick}` &&
        (el.attrs.type === "error" ||
          (el.getChild("x", NS_MUC_USER)?.getChildren("status") ?? []).some((s) => s.attrs.code === "110")),
      `self-presence in ${room}`,
    );
    if (self.attrs.type === "error")
      throw new Error(`${this.username} could not join ${jid}: ${self.toString()}`);
    const created = (self.getChild("x", NS_MUC_USER)?.getChildren("status") ?? []).some(
      (s) => s.attrs.code === "201",
    );
    if (!created) return;
    const form = xml(
      "x",
      { xmlns: "jabber:x:data", type: "submit" },
      opts.name === undefined
        ? null
        : [
            xml(
              "field",
              { var: "FORM_TYPE", type: "hidden" },
              xml("value", {}, "http://jabber.org/protocol/muc#roomconfig"),
            ),
            xml("field", { var: "muc#roomconfig_roomname" }, xml("value", {}, opts.name)),
          ],
    );
    await this.xmpp.iqCaller.request(
      xml("iq", { type: "set", to: jid }, xml("query", { xmlns: NS_MUC_OWNER }, form)),
    );
  }

  /** Says `body` in `room`; returns the message id (also its origin-id). */
  async say(room: string, body: string, opts: { replaces?: string } = {}): Promise<string> {
    const id = randomUUID();
    await this.xmpp.send(
      xml(
        "message",
        { to: `${room}@${MUC_DOMAIN}`, type: "groupchat", id },
        xml("body", {}, body),
        opts.replaces ? xml("replace", { xmlns: "urn:xmpp:message-correct:0", id: opts.replaces }) : null,
        xml("origin-id", { xmlns: "urn:xmpp:sid:0", id }),
      ),
    );
    return id;
  }

  async setSubject(room: string, subject: string): Promise<void> {
    await this.xmpp.send(
      xml("message", { to: `${room}@${MUC_DOMAIN}`, type: "groupchat" }, xml("subject", {}, subject)),
    );
  }

  /** Changes nick in `room` and resolves once the room confirms it. */
  async changeNick(room: string, newNick: string): Promise<void> {
    await this.xmpp.send(xml("presence", { to: `${room}@${MUC_DOMAIN}/${newNick}` }));
    await this.waitForOccupant(room, newNick);
  }

  async leave(room: string, nick: string): Promise<void> {
    await this.xmpp.send(xml("presence", { to: `${room}@${MUC_DOMAIN}/${nick}`, type: "unavailable" }));
  }

  async stop(): Promise<void> {
    try {
      await this.xmpp.stop();
    } catch {
      // The server may already be gone.
    }
  }
}
