// A scripted stand-in for WebSocket, for the unit tests: the test plays the
// broker (serverOpen / serverSend / serverClose) and reads what the client
// sent (`sent`, parsed). Each makeFakeWebSocket() class keeps its own list
// of instances.

export function makeFakeWebSocket() {
  class FakeWebSocket {
    static CONNECTING = 0;
    static OPEN = 1;
    static CLOSING = 2;
    static CLOSED = 3;
    static instances = [];

    constructor(url) {
      this.url = url;
      this.readyState = 0;
      this.binaryType = "blob";
      this.sent = [];
      this.closedWith = null;
      this.onopen = null;
      this.onmessage = null;
      this.onclose = null;
      this.onerror = null;
      FakeWebSocket.instances.push(this);
    }

    static get last() {
      return FakeWebSocket.instances[FakeWebSocket.instances.length - 1];
    }

    send(text) {
      if (this.readyState !== 1) throw new Error(`send in readyState ${this.readyState}`);
      this.sent.push(JSON.parse(text));
    }

    close(code = 1000, reason = "") {
      if (this.readyState >= 2) return;
      this.closedWith = { code, reason };
      this.readyState = 2;
      queueMicrotask(() => this.serverClose(code, reason, true));
    }

    // ---- the test's side ----

    serverOpen() {
      this.readyState = 1;
      this.onopen?.({ type: "open" });
    }

    /** An object (sent as JSON text), a string, or binary data. */
    serverSend(msg) {
      const data = typeof msg === "string" || msg instanceof ArrayBuffer || ArrayBuffer.isView(msg) ? msg : JSON.stringify(msg);
      this.onmessage?.({ type: "message", data });
    }

    serverClose(code = 1006, reason = "", wasClean = false) {
      if (this.readyState === 3) return;
      this.readyState = 3;
      this.onerror?.({ type: "error" });
      this.onclose?.({ type: "close", code, reason, wasClean });
    }
  }
  return FakeWebSocket;
}
