// Loaded before the SDK, which takes hold of WebSocket when it loads.
//
// The SDK accepts only an apiBaseUrl with a host name and no port, and builds the WebSocket
// URL (wss://<xmppHost>:<port>/websocket) from the server's answer. Behind a reverse proxy
// (docs/operations.md) these are the real addresses and config.js names no others. For a
// local run without one, config.js names where they really are, and this maps the SDK's
// requests to them, as a hosts file would.
"use strict";

(() => {
  const config = window.MIXD_EXAMPLE;
  if (config.api) {
    const open = XMLHttpRequest.prototype.open;
    XMLHttpRequest.prototype.open = function (method, url, ...rest) {
      const mapped = String(url).startsWith(config.apiBaseUrl)
        ? config.api + String(url).slice(config.apiBaseUrl.length)
        : url;
      return open.call(this, method, mapped, ...rest);
    };
  }
  if (config.websocket) {
    const Native = window.WebSocket;
    window.WebSocket = class extends Native {
      constructor(url, protocols) {
        super(String(url).endsWith("/websocket") ? config.websocket : url, protocols);
      }
    };
  }
})();
