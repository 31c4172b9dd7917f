/* streaming-ingest browser client: sends XDM ExperienceEvents in Adobe's streaming
 * envelope to `POST /collection/{connectionId}` of `ingest serve` (docs/service.md,
 * "The browser client"). No build step, no dependency: load it with a <script> tag.
 *
 *   const ingest = StreamingIngest.create({
 *     endpoint: "https://collect.example.com", connectionId: "web-site",
 *     datasetId: "web-events", schemaRef: "https://ns.example.com/xdm/experience-event"});
 *   ingest.pageView();                          // fetch keepalive; a Promise of the answer
 *   ingest.beacon({eventType: "web.webinteraction.linkClicks"});   // sendBeacon; a boolean
 */
(function (global) {
  "use strict";

  var CONTENT_TYPE = "application/vnd.adobe.xed-full+json;version=1";
  var DEFAULTS = {
    cookieName: "ingest_ecid",
    cookieDays: 390, // about 13 months, as Adobe's own ECID cookie
    cookieDomain: "", // "" = the page's host only
    source: "ingest.js",
  };

  // 38 decimal digits, the form of Adobe's ECID, from the browser's CSPRNG.
  function newDeviceId() {
    var digits = new Uint8Array(38);
    global.crypto.getRandomValues(digits);
    var id = "";
    for (var i = 0; i < digits.length; i++) id += String(digits[i] % 10);
    return id.charAt(0) === "0" ? "1" + id.slice(1) : id;
  }

  function newEventId() {
    if (global.crypto.randomUUID) return global.crypto.randomUUID();
    var bytes = new Uint8Array(16);
    global.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) {
      return (b + 256).toString(16).slice(1);
    }).join("");
  }

  function readCookie(name) {
    var parts = global.document.cookie ? global.document.cookie.split("; ") : [];
    for (var i = 0; i < parts.length; i++) {
      var eq = parts[i].indexOf("=");
      if (parts[i].slice(0, eq) === name) return decodeURIComponent(parts[i].slice(eq + 1));
    }
    return null;
  }

  function writeCookie(options, value) {
    var cookie = options.cookieName + "=" + encodeURIComponent(value) +
      "; Max-Age=" + Math.round(options.cookieDays * 86400) + "; Path=/; SameSite=Lax";
    if (options.cookieDomain) cookie += "; Domain=" + options.cookieDomain;
    if (global.location.protocol === "https:") cookie += "; Secure";
    global.document.cookie = cookie;
  }

  function hasPrimary(identityMap) {
    return Object.keys(identityMap).some(function (namespace) {
      return (identityMap[namespace] || []).some(function (entry) { return entry.primary; });
    });
  }

  function Client(options) {
    var missing = ["endpoint", "connectionId", "datasetId", "schemaRef"].filter(function (k) {
      return !options[k];
    });
    if (missing.length) throw new Error("StreamingIngest.create needs " + missing.join(", "));
    this.options = {};
    for (var k in DEFAULTS) this.options[k] = DEFAULTS[k];
    for (var o in options) this.options[o] = options[o];
    this.options.endpoint = String(options.endpoint).replace(/\/+$/, "");
  }

  // The device id: the cookie's, or a new one kept in the cookie. Renewed on every call,
  // so a device seen within cookieDays keeps its id.
  Client.prototype.ecid = function () {
    var id = readCookie(this.options.cookieName);
    if (!/^[0-9]{38}$/.test(id || "")) id = newDeviceId();
    writeCookie(this.options, id);
    return id;
  };

  // The XDM event completed: its _id and timestamp where it has none, and the device's
  // ECID in identityMap (primary unless the caller marked another identity primary).
  Client.prototype.event = function (xdm) {
    var event = JSON.parse(JSON.stringify(xdm || {}));
    if (!event._id) event._id = newEventId();
    if (!event.timestamp) event.timestamp = new Date().toISOString();
    var identityMap = event.identityMap || {};
    var ecid = this.ecid();
    var known = (identityMap.ECID || []).some(function (entry) { return entry.id === ecid; });
    if (!known) {
      var entry = {id: ecid, authenticatedState: "ambiguous"};
      if (!hasPrimary(identityMap)) entry.primary = true;
      identityMap.ECID = (identityMap.ECID || []).concat([entry]);
    }
    event.identityMap = identityMap;
    return event;
  };

  // Adobe's streaming envelope around one event.
  Client.prototype.envelope = function (xdm) {
    var options = this.options;
    var schemaRef = {id: options.schemaRef, contentType: CONTENT_TYPE};
    var header = {schemaRef: schemaRef, datasetId: options.datasetId,
      source: {name: options.source}};
    if (options.imsOrgId) header.imsOrgId = options.imsOrgId;
    if (options.flowId) header.flowId = options.flowId;
    return {header: header, body: {xdmMeta: {schemaRef: schemaRef}, xdmEntity: this.event(xdm)}};
  };

  Client.prototype.url = function (batch, syncValidation) {
    var path = (batch ? "/collection/batch/" : "/collection/") +
      encodeURIComponent(this.options.connectionId);
    return this.options.endpoint + path + (syncValidation ? "?syncValidation=true" : "");
  };

  // text/plain: a CORS "simple" request, so no preflight delays it (or is lost on unload);
  // the inlet takes text/plain as JSON.
  function post(url, body) {
    return global.fetch(url, {
      method: "POST", body: body, keepalive: body.length < 60000, // keepalive caps at 64 KiB
      headers: {"Content-Type": "text/plain;charset=UTF-8"}, credentials: "omit", mode: "cors",
    }).then(function (response) {
      return response.text().then(function (text) {
        var parsed = null;
        try { parsed = JSON.parse(text); } catch (e) { parsed = text; }
        return {status: response.status, ok: response.ok, body: parsed};
      });
    });
  }

  // One event with fetch keepalive: a Promise of {status, ok, body} (Adobe's answer).
  Client.prototype.send = function (xdm, sendOptions) {
    var syncValidation = sendOptions && sendOptions.syncValidation;
    return post(this.url(false, syncValidation), JSON.stringify(this.envelope(xdm)));
  };

  // Several events in one request: a Promise of the 207 answer, one response per event.
  Client.prototype.sendBatch = function (events, sendOptions) {
    var syncValidation = sendOptions && sendOptions.syncValidation;
    var messages = events.map(this.envelope, this);
    return post(this.url(true, syncValidation), JSON.stringify({messages: messages}));
  };

  // One event with navigator.sendBeacon, for pagehide: true once the browser queued it.
  // The answer cannot be read; fetch keepalive is used where sendBeacon is missing.
  Client.prototype.beacon = function (xdm) {
    var body = JSON.stringify(this.envelope(xdm));
    if (global.navigator.sendBeacon) return global.navigator.sendBeacon(this.url(false), body);
    post(this.url(false), body).catch(function () {});
    return true;
  };

  // A page view of this page, with any more XDM fields given.
  Client.prototype.pageView = function (extra) {
    var event = {eventType: "web.webpagedetails.pageViews",
      web: {webPageDetails: {name: global.document.title, URL: global.location.href}}};
    if (global.document.referrer) event.web.webReferrer = {URL: global.document.referrer};
    for (var k in extra || {}) event[k] = extra[k];
    return this.send(event);
  };

  global.StreamingIngest = {
    create: function (options) { return new Client(options || {}); },
    version: "1",
  };
})(window);
