// Connection-level limits of the REST port, in front of both the fast path and express:
//  - at most `maxConnections` open sockets: a new connection beyond it evicts the oldest idle one
//    (no request in flight), so idle or half-sent sockets can never lock out a probe; when every
//    socket is busy the new one is closed at accept;
//  - at most `maxPipelined` requests of one connection run at once, and none starts while the
//    socket still has an answer waiting for the kernel (the client is not reading): the rest wait,
//    unparsed in the kernel or parsed but not started, with the socket paused until earlier answers
//    are written. A client that never reads keeps its requests waiting instead of making the server
//    run them all and hold every answer.
import type http from 'node:http';
import type { Socket } from 'node:net';

export interface ConnectionLimits {
  maxConnections: number;
  maxPipelined: number;
}

interface ConnectionState {
  /** Requests handed to the listener whose response has not finished. */
  inFlight: number;
  /** Requests parsed while `inFlight` was at the cap, in arrival order. */
  waiting: [http.IncomingMessage, http.ServerResponse][];
  /** True while the guard holds the socket paused. */
  held: boolean;
  /** True while a 'drain' listener will start the next waiting request. */
  awaitingDrain: boolean;
  resume: () => void;
}

export interface ConnectionGuard {
  /** Wraps the request listener: requests beyond the per-connection cap wait their turn. */
  wrap(listener: http.RequestListener): http.RequestListener;
  /** Open connections (for tests and metrics). */
  readonly open: number;
  /** Connections closed at accept or evicted because of maxConnections, since start. */
  readonly refused: number;
}

export function guardConnections(server: http.Server, limits: ConnectionLimits): ConnectionGuard {
  const states = new Map<Socket, ConnectionState>(); // insertion order = oldest first
  let refused = 0;

  server.on('connection', (socket: Socket) => {
    if (states.size >= limits.maxConnections) {
      refused++;
      const idle = oldestIdle(states);
      if (!idle) {
        socket.destroy();
        return;
      }
      idle.destroy();
      states.delete(idle);
    }
    const nativeResume = socket.resume.bind(socket);
    const state: ConnectionState = { inFlight: 0, waiting: [], held: false, awaitingDrain: false, resume: nativeResume };
    // Node resumes a paused socket whenever a request body is read or the socket drains; while the
    // guard holds it those resumes are ignored, or the parser would read on and start more requests.
    socket.resume = function guardedResume(this: Socket) {
      if (!state.held) nativeResume();
      return this;
    };
    states.set(socket, state);
    socket.once('close', () => states.delete(socket));
  });

  const release = (socket: Socket, state: ConnectionState) => {
    state.held = false;
    // An answer still waiting for the kernel means the client is slow: let Node's drain resume it.
    if (socket.writableNeedDrain) socket.once('drain', () => state.held || state.resume());
    else state.resume();
  };

  const canStart = (socket: Socket, state: ConnectionState) => state.inFlight < limits.maxPipelined && !socket.writableNeedDrain;

  return {
    wrap(listener) {
      const start = (state: ConnectionState, socket: Socket, req: http.IncomingMessage, res: http.ServerResponse) => {
        state.inFlight++;
        let done = false;
        const finished = () => {
          if (done) return;
          done = true;
          state.inFlight--;
          pump(state, socket);
        };
        res.once('finish', finished);
        res.once('close', finished);
        listener(req, res);
      };
      // Starts waiting requests while the connection has room, then lets the socket read again.
      const pump = (state: ConnectionState, socket: Socket) => {
        while (state.waiting.length > 0 && canStart(socket, state)) {
          const [nextReq, nextRes] = state.waiting.shift()!;
          start(state, socket, nextReq, nextRes);
        }
        if (state.waiting.length > 0 && socket.writableNeedDrain && !state.awaitingDrain) {
          state.awaitingDrain = true;
          socket.once('drain', () => {
            state.awaitingDrain = false;
            pump(state, socket);
          });
        }
        if (state.held && state.waiting.length === 0) release(socket, state);
      };
      return (req, res) => {
        const socket = req.socket;
        const state = states.get(socket);
        if (!state) return listener(req, res); // a connection accepted before the guard (none in practice)
        if (state.waiting.length === 0 && canStart(socket, state)) {
          start(state, socket, req, res);
          return;
        }
        state.waiting.push([req, res]);
        if (!state.held) {
          state.held = true;
          socket.pause();
        }
        pump(state, socket); // arms the drain wait when the socket is what holds it back
      };
    },
    get open() {
      return states.size;
    },
    get refused() {
      return refused;
    },
  };
}

function oldestIdle(states: Map<Socket, ConnectionState>): Socket | null {
  for (const [socket, state] of states) if (state.inFlight === 0 && state.waiting.length === 0) return socket;
  return null;
}
