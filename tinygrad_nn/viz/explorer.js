// The tinygrad_nn graph explorer: lays out, draws and animates the graph whose data is in the element #tg-data.
//
// Written for this project (no library): a layered layout in the manner of Sugiyama, done one module call at a
// time from the innermost out, so that an expanded module is one block inside its parent's layout. Inside a
// block: ranks by longest path (leaves pulled down next to the op that reads them), dummy points on edges that
// skip ranks, barycentre sweeps to order each rank, and x positions by repeated averaging with an exact
// least-squares placement that keeps nodes apart (pool-adjacent-violators). Everything is drawn as SVG.
//
// window.tinygradExplorer is the page's API (documented in docs/explorer.md); the tests drive the page with it.
(function () {
  "use strict";

  const started = performance.now();
  const app = document.getElementById("tg-app");
  const svg = document.getElementById("tg-canvas");
  const viewport = document.getElementById("tg-viewport");
  const panel = document.getElementById("tg-panel");
  const tooltip = document.getElementById("tg-tooltip");
  const data = JSON.parse(document.getElementById("tg-data").textContent);
  const parsed = performance.now();

  const ops = data.ops;
  const tensors = data.tensors;
  const containers = data.containers;
  const CONTAINERS = containers.length;

  // ------------------------------------------------------------------------------------------------------------
  // Structure
  // ------------------------------------------------------------------------------------------------------------

  containers.forEach(function (c, i) {
    c.id = i;
    c.childIds = [];
    c.allOps = [];
  });
  containers.forEach(function (c) {
    if (c.parent !== null) containers[c.parent].childIds.push(c.id);
  });
  ops.forEach(function (op, i) {
    op.id = i;
    for (let c = op.container; c !== null; c = containers[c].parent) containers[c].allOps.push(i);
  });
  tensors.forEach(function (t, i) {
    t.id = i;
  });

  // The backward stepper walks these steps: for each root, the ops in the order backward() visits them.
  const steps = [];
  data.backward.forEach(function (order, root) {
    order.forEach(function (op) {
      steps.push({ root: root, op: op });
    });
  });

  const state = {
    collapsed: Uint8Array.from(containers.map(function (c) { return c.collapsed ? 1 : 0; })),
    showSaved: false,
    step: 0,
    selected: null,
    query: "",
    matches: [],
    matchIndex: -1,
    timer: null,
    view: { x: 0, y: 0, k: 1 },
  };

  // ------------------------------------------------------------------------------------------------------------
  // Text
  // ------------------------------------------------------------------------------------------------------------

  const FAMILY = "Helvetica, Arial, sans-serif";
  const FONTS = {
    bold: { size: 13, height: 17, css: "bold 13px " + FAMILY, cls: "tg-bold" },
    normal: { size: 13, height: 17, css: "13px " + FAMILY, cls: "" },
    small: { size: 11, height: 14, css: "11px " + FAMILY, cls: "tg-small" },
    saved: { size: 11, height: 14, css: "11px " + FAMILY, cls: "tg-saved" },
    note: { size: 11, height: 14, css: "bold 11px " + FAMILY, cls: "tg-small" }, // a gradient problem, in bold
  };
  const measurer = document.createElement("canvas").getContext("2d");
  const widths = new Map();

  function textWidth(text, font) {
    const key = font.css + "\u0000" + text;
    let width = widths.get(key);
    if (width === undefined) {
      measurer.font = font.css;
      width = measurer.measureText(text).width;
      widths.set(key, width);
    }
    return width;
  }

  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, function (ch) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[ch];
    });
  }

  function plural(count, word) {
    return count.toLocaleString("en-US") + " " + word + (count === 1 ? "" : "s");
  }

  function number(value) {
    if (typeof value === "string") return value; // "nan", "inf"
    if (value === 0) return "0";
    const abs = Math.abs(value);
    if (abs >= 1e-3 && abs < 1e4) return String(Number(value.toPrecision(3)));
    return value.toExponential(2).replace("e+", "e");
  }

  function matchesText(count) {
    return count === 1 ? "1 match" : count + " matches";
  }

  function shorten(text, length) {
    return text.length <= length ? text : text.slice(0, length - 1) + "…";
  }

  // ------------------------------------------------------------------------------------------------------------
  // What is drawn: which modules are clusters, which are boxes, which tensors show, and the edges between them
  // ------------------------------------------------------------------------------------------------------------

  // A node of the drawing: key "o3" (op 3), "t7" (tensor 7) or "c2" (container 2 collapsed into a box).
  function computeView() {
    // hiddenBy[c]: -1 when c is drawn as an expanded cluster, else the collapsed container whose box holds it.
    const hiddenBy = new Int32Array(CONTAINERS);
    for (let i = 0; i < CONTAINERS; i++) {
      const parent = containers[i].parent;
      const above = parent === null ? -1 : hiddenBy[parent];
      hiddenBy[i] = above >= 0 ? above : state.collapsed[i] ? i : -1;
    }
    const nodes = new Map();
    const opRep = new Array(ops.length);
    function box(id) {
      const key = "c" + id;
      if (!nodes.has(key)) {
        const c = containers[id];
        nodes.set(key, { key: key, type: "box", ref: id, block: c.parent === null ? -1 : c.parent, left: [], right: [] });
      }
      return key;
    }
    ops.forEach(function (op, i) {
      const holder = op.container === null ? -1 : hiddenBy[op.container];
      if (holder >= 0) {
        opRep[i] = box(holder);
      } else {
        const key = "o" + i;
        nodes.set(key, { key: key, type: "op", ref: i, block: op.container === null ? -1 : op.container, left: [], right: [] });
        opRep[i] = key;
      }
    });
    const tensorShown = new Uint8Array(tensors.length);
    tensors.forEach(function (t, i) {
      if (t.container !== null && hiddenBy[t.container] >= 0) return;
      if (t.producer !== null && opRep[t.producer][0] !== "o" && t.kind !== "output") return;
      tensorShown[i] = 1;
      const key = "t" + i;
      if (t.flank !== null) {
        const op = nodes.get("o" + t.flank[0]);
        if (op) {
          op[t.flank[1]].push(i);
          return;
        }
      }
      nodes.set(key, { key: key, type: "tensor", ref: i, block: t.container === null ? -1 : t.container, left: [], right: [] });
    });
    // Edges, each once: op -> its output, tensor -> each op that reads it, or box -> op where the tensor between
    // them is inside the box's outputs and not drawn.
    const edges = [];
    const seen = new Set();
    function connect(from, to, position) {
      if (from === to) return;
      const id = from + ">" + to;
      if (seen.has(id)) return;
      seen.add(id);
      edges.push({ from: from, to: to, position: position });
    }
    tensors.forEach(function (t, i) {
      if (t.container !== null && hiddenBy[t.container] >= 0) return;
      if (tensorShown[i]) {
        if (t.flank !== null && nodes.has("o" + t.flank[0])) return; // drawn beside its op
        const key = "t" + i;
        if (t.producer !== null) connect(opRep[t.producer], key, 0);
        t.consumers.forEach(function (use) {
          connect(key, opRep[use[0]], use[1]);
        });
      } else if (t.producer !== null) {
        const from = opRep[t.producer];
        t.consumers.forEach(function (use) {
          connect(from, opRep[use[0]], use[1]);
        });
      }
    });
    return { hiddenBy: hiddenBy, nodes: nodes, opRep: opRep, tensorShown: tensorShown, edges: edges };
  }

  // ------------------------------------------------------------------------------------------------------------
  // Labels and sizes
  // ------------------------------------------------------------------------------------------------------------

  function line(text, font, extra) {
    return { text: text, font: FONTS[font], extra: extra || "" };
  }

  function opLines(op) {
    const lines = [line(op.name, "bold")];
    if (op.constants) lines.push(line("+" + plural(op.constants, "no-grad input"), "small"));
    if (state.showSaved) {
      if (op.saved === null) lines.push(line("saved: freed by backward", "saved"));
      else if (op.saved.length === 0) lines.push(line("saved: nothing", "saved"));
      else
        op.saved.forEach(function (text, position) {
          lines.push(line((position === 0 ? "saved: " : "") + shorten(text, 46), "saved"));
        });
    }
    return lines;
  }

  function tensorLines(t) {
    const lines = [];
    if (t.title) {
      lines.push(line(t.title, "bold"));
      lines.push(line(t.shapeText, "small"));
    } else {
      lines.push(line(t.shapeText, "normal"));
    }
    if (t.note) {
      lines.push(t.problem ? line("⚠ " + t.note, "note", "tg-note-" + t.problem) : line(t.note, "small"));
    }
    return lines;
  }

  function boxLines(c) {
    const lines = [line("▸ " + c.title, "bold")];
    if (c.kind === "fold") lines.push(line(c.name, "small"));
    const shown = 4;
    [["in", c.inputs], ["out", c.outputs]].forEach(function (pair) {
      pair[1].slice(0, shown).forEach(function (t) {
        lines.push(line(pair[0] + "  " + tensors[t].shapeText, "small"));
      });
      if (pair[1].length > shown) lines.push(line(pair[0] + "  … " + (pair[1].length - shown) + " more", "small"));
    });
    const rows = 10;
    c.parameters.slice(0, rows).forEach(function (row) {
      const text = row[0] + "  " + row[1] + (row[2] ? "  " + (row[3] ? "⚠ " : "") + row[2] : "");
      lines.push(row[3] ? line(text, "note", "tg-note-" + row[3]) : line(text, "small"));
    });
    if (c.parameters.length > rows) lines.push(line("… " + (c.parameters.length - rows) + " more parameters", "small"));
    const parts = [plural(c.opCount, "op") + " inside"];
    if (c.parameterCount) parts.push(plural(c.parameterCount, "parameter"));
    if (c.constants) parts.push("+" + plural(c.constants, "no-grad input"));
    lines.push(line(parts.join(", "), "small"));
    return lines;
  }

  const PAD_X = 9;
  const PAD_Y = 5;
  const FLANK_GAP = 26;

  function measure(lines) {
    let width = 0;
    let height = 0;
    lines.forEach(function (l) {
      width = Math.max(width, textWidth(l.text, l.font));
      height += l.font.height;
    });
    return { w: Math.ceil(width) + 2 * PAD_X, h: height + 2 * PAD_Y };
  }

  function sizeNodes(view) {
    view.nodes.forEach(function (node) {
      if (node.type === "op") node.lines = opLines(ops[node.ref]);
      else if (node.type === "tensor") node.lines = tensorLines(tensors[node.ref]);
      else node.lines = boxLines(containers[node.ref]);
      const size = measure(node.lines);
      node.bw = Math.max(size.w, node.type === "op" ? 56 : 40); // the box itself
      node.bh = size.h;
      if (node.type === "box") {
        node.bw += 6; // room for the stacked look
        node.bh += 6;
      }
      // An op with parameters beside it is one wider item; `anchor` is where its edges attach, from the centre.
      node.flanks = { left: [], right: [] };
      let leftWidth = 0;
      let rightWidth = 0;
      let height = node.bh;
      ["left", "right"].forEach(function (side) {
        node[side].forEach(function (t) {
          const lines = tensorLines(tensors[t]);
          const size = measure(lines);
          node.flanks[side].push({ ref: t, lines: lines, w: size.w, h: size.h });
          if (side === "left") leftWidth += size.w + FLANK_GAP;
          else rightWidth += size.w + FLANK_GAP;
          height = Math.max(height, size.h);
        });
      });
      node.w = leftWidth + node.bw + rightWidth;
      node.h = height;
      node.leftWidth = leftWidth;
      // A box's face is drawn 6 px narrower than its stack of cards, on the left.
      node.anchor = leftWidth + node.bw / 2 - node.w / 2 - (node.type === "box" ? 3 : 0);
    });
  }

  // ------------------------------------------------------------------------------------------------------------
  // Layout of one block: items (nodes and expanded child modules) and the edges between them
  // ------------------------------------------------------------------------------------------------------------

  const RANK_GAP = 34;
  const NODE_GAP = 22;
  const DUMMY_GAP = 10;

  // items: [{w, h, order}], edges: [{u, v, pu, pv}] (pu, pv: where the edge leaves u and enters v, from their
  // centres). Returns x (centre) and y (top) of each item, the block's size, and each edge's points.
  function layoutBlock(items, edges) {
    const count = items.length;
    const succ = [];
    const pred = [];
    for (let i = 0; i < count; i++) {
      succ.push([]);
      pred.push([]);
    }
    edges.forEach(function (e, index) {
      succ[e.u].push(index);
      pred[e.v].push(index);
    });
    // Ranks: longest path from the sources, in item order; a cycle (there should be none) is broken where it is
    // met, by taking the waiting item that comes first.
    const rank = new Int32Array(count);
    const waiting = new Int32Array(count);
    const placed = new Uint8Array(count);
    for (let i = 0; i < count; i++) waiting[i] = pred[i].length;
    const byOrder = [];
    for (let i = 0; i < count; i++) byOrder.push(i);
    byOrder.sort(function (a, b) { return items[a].order - items[b].order; });
    let queue = byOrder.filter(function (i) { return waiting[i] === 0; });
    let done = 0;
    let cursor = 0;
    while (done < count) {
      if (queue.length === 0) {
        while (placed[byOrder[cursor]]) cursor++;
        queue = [byOrder[cursor]];
      }
      const next = [];
      for (let q = 0; q < queue.length; q++) {
        const i = queue[q];
        if (placed[i]) continue;
        placed[i] = 1;
        done++;
        for (let s = 0; s < succ[i].length; s++) {
          const e = edges[succ[i][s]];
          if (placed[e.v]) {
            e.back = true;
            continue;
          }
          rank[e.v] = Math.max(rank[e.v], rank[i] + 1);
          if (--waiting[e.v] === 0) next.push(e.v);
        }
      }
      queue = next;
    }
    // A source sits just above the first item that reads it (a shared parameter next to its ops).
    for (let i = 0; i < count; i++) {
      if (pred[i].length === 0 && succ[i].length > 0) {
        let lowest = Infinity;
        succ[i].forEach(function (index) {
          if (!edges[index].back) lowest = Math.min(lowest, rank[edges[index].v]);
        });
        if (lowest !== Infinity) rank[i] = Math.max(0, lowest - 1);
      }
    }
    let ranks = 0;
    for (let i = 0; i < count; i++) ranks = Math.max(ranks, rank[i] + 1);

    // Layers, with a dummy point on each rank an edge passes.
    const layer = [];
    for (let r = 0; r < ranks; r++) layer.push([]);
    const node = []; // item or dummy: {w, h, rank, up: [{n, o}], down: [{n, o}], order}
    for (let i = 0; i < count; i++) {
      node.push({ w: items[i].w, h: items[i].h, rank: rank[i], up: [], down: [], order: items[i].order, dummy: false });
    }
    edges.forEach(function (e) {
      e.points = [];
      if (e.back) return;
      let from = e.u;
      let fromPort = e.pu;
      for (let r = rank[e.u] + 1; r < rank[e.v]; r++) {
        const dummy = node.length;
        node.push({ w: 2, h: 0, rank: r, up: [], down: [], order: items[e.u].order + 0.5, dummy: true });
        node[from].down.push({ n: dummy, o: fromPort, p: 0 });
        node[dummy].up.push({ n: from, o: 0, p: fromPort });
        e.points.push(dummy);
        from = dummy;
        fromPort = 0;
      }
      node[from].down.push({ n: e.v, o: fromPort, p: e.pv, position: e.position });
      node[e.v].up.push({ n: from, o: e.pv, p: fromPort, position: e.position });
    });
    node.forEach(function (n, index) {
      layer[n.rank].push(index);
    });
    layer.forEach(function (members) {
      members.sort(function (a, b) { return node[a].order - node[b].order; });
    });

    // Order within ranks: barycentre sweeps down and up, keeping the order with the fewest crossings.
    const position = new Float64Array(node.length);
    function numberLayers() {
      layer.forEach(function (members) {
        members.forEach(function (n, i) {
          position[n] = i;
        });
      });
    }
    numberLayers();
    function crossings() {
      let total = 0;
      for (let r = 0; r + 1 < ranks; r++) {
        const ends = [];
        layer[r].forEach(function (n) {
          node[n].down.forEach(function (link) {
            ends.push([position[n], position[link.n]]);
          });
        });
        if (ends.length < 2) continue;
        ends.sort(function (a, b) { return a[0] - b[0] || a[1] - b[1]; });
        total += inversions(ends.map(function (pair) { return pair[1]; }));
      }
      return total;
    }
    let best = layer.map(function (members) { return members.slice(); });
    let bestCrossings = ranks > 1 ? crossings() : 0;
    const sweeps = bestCrossings === 0 ? 0 : node.length > 4000 ? 2 : 6;
    for (let sweep = 0; sweep < sweeps; sweep++) {
      const downwards = sweep % 2 === 0;
      for (let step = 1; step < ranks; step++) {
        const r = downwards ? step : ranks - 1 - step;
        const members = layer[r];
        const key = new Map();
        members.forEach(function (n) {
          const links = downwards ? node[n].up : node[n].down;
          if (links.length === 0) {
            key.set(n, position[n]);
            return;
          }
          let sum = 0;
          links.forEach(function (link) {
            // Inputs in argument order: the first operand's edge a little to the left.
            const nudge = link.position !== undefined ? (link.position - 0.5) * 0.01 : 0;
            sum += position[link.n] + nudge;
          });
          key.set(n, sum / links.length);
        });
        members.sort(function (a, b) { return key.get(a) - key.get(b) || position[a] - position[b]; });
        members.forEach(function (n, i) {
          position[n] = i;
        });
      }
      const now = crossings();
      if (now < bestCrossings) {
        bestCrossings = now;
        best = layer.map(function (members) { return members.slice(); });
      }
      if (bestCrossings === 0) break;
    }
    for (let r = 0; r < ranks; r++) layer[r] = best[r];
    numberLayers();

    // x: start packed, then move each node towards the average of its neighbours (ports included), rank by
    // rank, down and up, each time placing the whole rank exactly (least squares, keeping the gaps).
    const x = new Float64Array(node.length);
    layer.forEach(function (members) {
      let cursor = 0;
      members.forEach(function (n) {
        x[n] = cursor + node[n].w / 2;
        cursor += node[n].w + NODE_GAP;
      });
    });
    const passes = node.length > 4000 ? 4 : 10;
    for (let pass = 0; pass < passes; pass++) {
      const downwards = pass % 2 === 0;
      for (let step = 0; step < ranks; step++) {
        const r = downwards ? step : ranks - 1 - step;
        placeRank(layer[r], downwards, pass === passes - 1);
      }
    }
    function placeRank(members, downwards, both) {
      const wanted = new Float64Array(members.length);
      const weight = new Float64Array(members.length);
      members.forEach(function (n, i) {
        const links = both ? node[n].up.concat(node[n].down) : downwards ? node[n].up : node[n].down;
        if (links.length === 0) {
          wanted[i] = x[n];
          weight[i] = 0.01;
          return;
        }
        let sum = 0;
        let total = 0;
        links.forEach(function (link) {
          const w = node[link.n].dummy || node[n].dummy ? 4 : 1; // long edges straight
          sum += w * (x[link.n] + link.p - link.o);
          total += w;
        });
        wanted[i] = sum / total;
        weight[i] = total;
      });
      const gaps = [];
      for (let i = 0; i + 1 < members.length; i++) {
        const a = node[members[i]];
        const b = node[members[i + 1]];
        gaps.push((a.w + b.w) / 2 + (a.dummy || b.dummy ? DUMMY_GAP : NODE_GAP));
      }
      const placed = isotonicPlace(wanted, weight, gaps);
      members.forEach(function (n, i) {
        x[n] = placed[i];
      });
    }
    // y: ranks as tall as their tallest item, items centred in their rank.
    const rankTop = new Float64Array(ranks);
    const rankHeight = new Float64Array(ranks);
    for (let i = 0; i < count; i++) rankHeight[rank[i]] = Math.max(rankHeight[rank[i]], items[i].h);
    let y = 0;
    for (let r = 0; r < ranks; r++) {
      rankTop[r] = y;
      y += rankHeight[r] + RANK_GAP;
    }
    let left = Infinity;
    let right = -Infinity;
    node.forEach(function (n, i) {
      left = Math.min(left, x[i] - n.w / 2);
      right = Math.max(right, x[i] + n.w / 2);
    });
    if (node.length === 0) {
      left = 0;
      right = 0;
    }
    const result = { x: new Float64Array(count), y: new Float64Array(count), w: right - left, h: Math.max(0, y - RANK_GAP) };
    for (let i = 0; i < count; i++) {
      result.x[i] = x[i] - left;
      result.y[i] = rankTop[rank[i]] + (rankHeight[rank[i]] - items[i].h) / 2;
    }
    edges.forEach(function (e) {
      e.route = e.points.map(function (dummy) {
        const r = node[dummy].rank;
        return { x: x[dummy] - left, top: rankTop[r], bottom: rankTop[r] + rankHeight[r] };
      });
    });
    return result;
  }

  // Number of pairs out of order (crossings between two ranks), by merge sort.
  function inversions(values) {
    let count = 0;
    function sort(list) {
      if (list.length < 2) return list;
      const middle = list.length >> 1;
      const a = sort(list.slice(0, middle));
      const b = sort(list.slice(middle));
      const merged = [];
      let i = 0;
      let j = 0;
      while (i < a.length && j < b.length) {
        if (b[j] < a[i]) {
          merged.push(b[j++]);
          count += a.length - i;
        } else merged.push(a[i++]);
      }
      return merged.concat(a.slice(i), b.slice(j));
    }
    sort(values);
    return count;
  }

  // The positions closest (weighted least squares) to `wanted`, in the same order, with at least gaps[i]
  // between item i and i + 1: subtract the cumulative gaps and it is isotonic regression, solved exactly by
  // pooling adjacent violators.
  function isotonicPlace(wanted, weight, gaps) {
    const n = wanted.length;
    const offset = new Float64Array(n);
    for (let i = 1; i < n; i++) offset[i] = offset[i - 1] + gaps[i - 1];
    const value = [];
    const mass = [];
    const size = [];
    for (let i = 0; i < n; i++) {
      let v = wanted[i] - offset[i];
      let m = weight[i];
      let s = 1;
      while (value.length && value[value.length - 1] > v) {
        const pv = value.pop();
        const pm = mass.pop();
        const ps = size.pop();
        v = (v * m + pv * pm) / (m + pm);
        m += pm;
        s += ps;
      }
      value.push(v);
      mass.push(m);
      size.push(s);
    }
    const out = new Float64Array(n);
    let i = 0;
    for (let b = 0; b < value.length; b++) {
      for (let k = 0; k < size[b]; k++, i++) out[i] = value[b] + offset[i];
    }
    return out;
  }

  // ------------------------------------------------------------------------------------------------------------
  // Layout of the whole drawing: blocks from the innermost module out
  // ------------------------------------------------------------------------------------------------------------

  const PAD = 12;
  const TITLE = 22;

  function blockOf(id) {
    return id === null ? -1 : id;
  }

  function layout(view) {
    sizeNodes(view);
    // Items of each block (key -1: the top level): its nodes, and its expanded child modules as "k<id>".
    const blocks = new Map();
    function block(id) {
      let b = blocks.get(id);
      if (!b) {
        b = { id: id, items: [], index: new Map(), edges: [] };
        blocks.set(id, b);
      }
      return b;
    }
    block(-1);
    const itemOrder = new Map();
    function firstOp(key, node) {
      if (node.type === "op") return node.ref;
      if (node.type === "box") return containers[node.ref].allOps.length ? containers[node.ref].allOps[0] : 0;
      const t = tensors[node.ref];
      if (t.producer !== null) return t.producer + 0.5;
      return t.consumers.length ? t.consumers[0][0] - 0.5 : 0;
    }
    view.nodes.forEach(function (node, key) {
      const b = block(node.block);
      b.index.set(key, b.items.length);
      b.items.push({ key: key, w: node.w, h: node.h, order: firstOp(key, node), node: node });
      itemOrder.set(key, firstOp(key, node));
    });
    for (let i = 0; i < CONTAINERS; i++) {
      if (view.hiddenBy[i] !== -1) continue;
      block(i);
      const parent = blockOf(containers[i].parent);
      const b = block(parent);
      const key = "k" + i;
      b.index.set(key, b.items.length);
      b.items.push({ key: key, w: 0, h: 0, order: containers[i].allOps.length ? containers[i].allOps[0] : 0, cluster: i });
    }
    // Each edge belongs to the innermost block holding both ends; at that level its ends are items.
    function parentBlock(id) {
      return id === -1 ? null : blockOf(containers[id].parent);
    }
    function levelOf(id) {
      return id === -1 ? -1 : containers[id].level;
    }
    view.edges.forEach(function (edge) {
      let bu = view.nodes.get(edge.from).block;
      let bv = view.nodes.get(edge.to).block;
      let iu = edge.from;
      let iv = edge.to;
      while (bu !== bv) {
        if (levelOf(bu) >= levelOf(bv)) {
          iu = "k" + bu;
          bu = parentBlock(bu);
        } else {
          iv = "k" + bv;
          bv = parentBlock(bv);
        }
      }
      edge.block = bu;
      edge.itemFrom = iu;
      edge.itemTo = iv;
      block(bu).edges.push(edge);
    });
    // Innermost first: containers come parents first, so backwards.
    const order = [];
    for (let i = CONTAINERS - 1; i >= 0; i--) if (view.hiddenBy[i] === -1) order.push(i);
    order.push(-1);
    const placed = new Map(); // block id -> {result, items}
    const clusterSize = new Map();
    // Where a node's centre is, from the left edge of the box of cluster `target` (which holds it).
    function relativeX(nodeKey, target) {
      let b = view.nodes.get(nodeKey).block;
      let key = nodeKey;
      let x = 0;
      for (;;) {
        const laid = placed.get(b);
        x += PAD + laid.result.x[laid.block.index.get(key)];
        if (b === target) return x;
        x -= clusterSize.get(b).w / 2; // this cluster's left edge, from its parent's left edge: PAD + centre - w / 2
        key = "k" + b;
        b = parentBlock(b);
      }
    }
    // Where an edge leaves or enters item `itemKey` (the node itself, or an expanded module holding it), from
    // the item's centre.
    function port(nodeKey, itemKey) {
      const node = view.nodes.get(nodeKey);
      if (nodeKey === itemKey) return node.anchor;
      const cluster = Number(itemKey.slice(1));
      return relativeX(nodeKey, cluster) + node.anchor - clusterSize.get(cluster).w / 2;
    }
    order.forEach(function (id) {
      const b = blocks.get(id);
      b.items.forEach(function (item) {
        if (item.cluster !== undefined) {
          const size = clusterSize.get(item.cluster);
          item.w = size.w;
          item.h = size.h;
        }
      });
      const edges = b.edges.map(function (edge) {
        return {
          u: b.index.get(edge.itemFrom),
          v: b.index.get(edge.itemTo),
          pu: port(edge.from, edge.itemFrom),
          pv: port(edge.to, edge.itemTo),
          position: edge.position,
          edge: edge,
        };
      });
      const result = layoutBlock(b.items, edges);
      edges.forEach(function (e) {
        e.edge.route = e.route;
        e.edge.back = !!e.back;
      });
      placed.set(id, { block: b, result: result });
      if (id !== -1) {
        const title = textWidth("▾ " + containers[id].title, FONTS.bold) + 2 * PAD;
        const width = Math.max(result.w + 2 * PAD, title);
        // Centre narrow content under a wide title.
        if (width > result.w + 2 * PAD) {
          const shift = (width - 2 * PAD - result.w) / 2;
          for (let i = 0; i < result.x.length; i++) result.x[i] += shift;
          result.w = width - 2 * PAD;
          b.edges.forEach(function (edge) {
            (edge.route || []).forEach(function (point) {
              point.x += shift;
            });
          });
        }
        clusterSize.set(id, { w: result.w + 2 * PAD, h: result.h + TITLE + PAD });
      }
    });
    // Absolute positions, top down.
    const origin = new Map(); // block id -> content origin {x, y}
    const clusterBoxes = new Map(); // container id -> {x, y, w, h}
    const positions = new Map(); // node key -> {x, y} of its box's top-left
    origin.set(-1, { x: 0, y: 0 });
    for (let k = order.length - 1; k >= 0; k--) {
      const id = order[k];
      const laid = placed.get(id);
      const o = origin.get(id);
      laid.block.items.forEach(function (item, index) {
        const left = o.x + laid.result.x[index] - item.w / 2;
        const top = o.y + laid.result.y[index];
        if (item.cluster !== undefined) {
          clusterBoxes.set(item.cluster, { x: left, y: top, w: item.w, h: item.h });
          origin.set(item.cluster, { x: left + PAD, y: top + TITLE });
        } else {
          positions.set(item.key, { x: left, y: top });
        }
      });
    }
    const top = placed.get(-1).result;
    return {
      positions: positions,
      clusters: clusterBoxes,
      origin: origin,
      width: top.w,
      height: top.h,
      itemOrder: itemOrder,
    };
  }

  // ------------------------------------------------------------------------------------------------------------
  // Drawing
  // ------------------------------------------------------------------------------------------------------------

  let current = null; // {view, geometry}
  const elements = new Map(); // node key -> <g>
  const clusterElements = new Map(); // container id -> <g>
  const edgeElements = []; // [{edge, path}]
  const flankElements = new Map(); // tensor key -> <g> drawn beside its op

  function f(value) {
    return Math.round(value * 10) / 10;
  }

  function textBlock(lines, x0, width, y0, centre) {
    let y = y0 + PAD_Y;
    let out = "";
    lines.forEach(function (l) {
      y += l.font.height;
      const cls = (l.font.cls + " " + l.extra).trim();
      const x = centre ? x0 + width / 2 : x0 + PAD_X;
      out +=
        '<text x="' + f(x) + '" y="' + f(y - 4) + '" font-size="' + l.font.size + '"' +
        (centre ? ' text-anchor="middle"' : "") + (cls ? ' class="' + cls + '"' : "") + ">" +
        escapeHtml(l.text) + "</text>";
    });
    return out;
  }

  function nodeClasses(node) {
    if (node.type === "op") return "tg-kind-op";
    if (node.type === "tensor") {
      const t = tensors[node.ref];
      return "tg-kind-" + t.kind + (t.problem ? " tg-problem-" + t.problem : "");
    }
    const c = containers[node.ref];
    return "tg-kind-" + (c.kind === "fold" ? "fold" : "module") + (c.problem ? " tg-problem-" + c.problem : "");
  }

  function tensorBox(t, lines, x, y, w, h) {
    const info = tensors[t];
    const cls = "tg-node tg-kind-" + info.kind + (info.problem ? " tg-problem-" + info.problem : "");
    return (
      '<g class="' + cls + '" data-node="t' + t + '" data-tensor="' + t + '" data-kind="' + info.kind + '">' +
      '<rect class="tg-shape" x="' + f(x) + '" y="' + f(y) + '" width="' + f(w) + '" height="' + f(h) + '" rx="2"></rect>' +
      textBlock(lines, x, w, y, true) + "</g>"
    );
  }

  // Big graphs are drawn only near what is on screen: more than this many nodes and the drawing covers the
  // visible area and as much again around it, and is redrawn when the view moves out of it.
  const DRAW_ALL = 1500;
  let drawnWindow = null; // the area drawn, in graph coordinates; null when everything is drawn
  let redrawPending = false;

  // Bounding boxes of everything drawn, for drawing what is in a window.
  function indexGeometry() {
    const geometry = current.geometry;
    const boxes = [];
    current.view.nodes.forEach(function (node, key) {
      const p = geometry.positions.get(key);
      boxes.push({ key: key, x0: p.x, y0: p.y, x1: p.x + node.w, y1: p.y + node.h });
    });
    geometry.nodeBoxes = boxes;
    geometry.edgePoints = current.view.edges.map(function (edge) {
      const points = edgePoints(edge, geometry);
      let x0 = Infinity;
      let y0 = Infinity;
      let x1 = -Infinity;
      let y1 = -Infinity;
      points.forEach(function (point) {
        x0 = Math.min(x0, point.x);
        y0 = Math.min(y0, point.y);
        x1 = Math.max(x1, point.x);
        y1 = Math.max(y1, point.y);
      });
      return { points: points, x0: x0, y0: y0, x1: x1, y1: y1 };
    });
  }

  function visibleArea() {
    const v = state.view;
    const width = svg.clientWidth || 800;
    const height = svg.clientHeight || 600;
    return { x0: -v.x / v.k, y0: -v.y / v.k, x1: (width - v.x) / v.k, y1: (height - v.y) / v.k };
  }

  function overlaps(a, b) {
    return a.x0 <= b.x1 && b.x0 <= a.x1 && a.y0 <= b.y1 && b.y0 <= a.y1;
  }

  function render() {
    indexGeometry();
    draw();
  }

  function draw() {
    redrawPending = false;
    let win = null;
    if (current.view.nodes.size > DRAW_ALL) {
      const area = visibleArea();
      const dx = area.x1 - area.x0;
      const dy = area.y1 - area.y0;
      win = { x0: area.x0 - dx, y0: area.y0 - dy, x1: area.x1 + dx, y1: area.y1 + dy };
    }
    drawWindow(win);
  }

  // Redraw once the visible area leaves the drawn window (after a pan or a zoom).
  function drawIfNeeded() {
    if (drawnWindow === null || redrawPending) return;
    const area = visibleArea();
    const inside = area.x0 >= drawnWindow.x0 && area.y0 >= drawnWindow.y0 && area.x1 <= drawnWindow.x1 && area.y1 <= drawnWindow.y1;
    if (!inside) {
      redrawPending = true;
      requestAnimationFrame(draw);
    }
  }

  function drawWindow(win) {
    const view = current.view;
    const geometry = current.geometry;
    const parts = [];
    // Clusters, outermost first so inner ones paint on top.
    for (let i = 0; i < CONTAINERS; i++) {
      const b = geometry.clusters.get(i);
      if (!b || (win && !overlaps(win, { x0: b.x, y0: b.y, x1: b.x + b.w, y1: b.y + b.h }))) continue;
      const c = containers[i];
      parts.push(
        '<g class="tg-cluster tg-cluster-level-' + (c.level % 3) + '" data-container="' + i + '" data-state="expanded" data-kind="' + c.kind + '"' +
        (c.kind === "fold" ? ' data-repeats="' + c.repeats + '"' : "") + ">" +
        '<rect class="tg-cluster-box" x="' + f(b.x) + '" y="' + f(b.y) + '" width="' + f(b.w) + '" height="' + f(b.h) + '" rx="8"></rect>' +
        '<rect class="tg-cluster-bar" x="' + f(b.x) + '" y="' + f(b.y) + '" width="' + f(b.w) + '" height="20" rx="8"><title>Click to collapse</title></rect>' +
        '<text class="tg-cluster-title" x="' + f(b.x + 8) + '" y="' + f(b.y + 15) + '" font-size="12">' + escapeHtml("▾ " + c.title) + "</text></g>"
      );
    }
    // Edges.
    const edgeParts = [];
    view.edges.forEach(function (edge, index) {
      const shape = geometry.edgePoints[index];
      if (win && !overlaps(win, shape)) return;
      edgeParts.push(link('data-edge="' + index + '"', shape.points));
    });
    parts.push('<g class="tg-edges">' + edgeParts.join("") + "</g>");
    // Nodes.
    const nodeParts = [];
    geometry.nodeBoxes.forEach(function (box) {
      if (win && !overlaps(win, box)) return;
      drawNode(view.nodes.get(box.key), box.key, geometry, nodeParts);
    });
    parts.push('<g class="tg-nodes">' + nodeParts.join("") + "</g>");
    viewport.innerHTML = parts.join("");
    drawnWindow = win;
    elements.clear();
    clusterElements.clear();
    flankElements.clear();
    edgeElements.length = 0;
    viewport.querySelectorAll(".tg-node").forEach(function (el) {
      const key = el.getAttribute("data-node");
      if (view.nodes.has(key)) elements.set(key, el);
      else flankElements.set(key, el);
    });
    viewport.querySelectorAll(".tg-cluster").forEach(function (el) {
      clusterElements.set(Number(el.getAttribute("data-container")), el);
    });
    viewport.querySelectorAll(".tg-link").forEach(function (el) {
      if (el.hasAttribute("data-flank")) edgeElements.push({ flank: Number(el.getAttribute("data-flank")), path: el });
      else edgeElements.push({ edge: view.edges[Number(el.getAttribute("data-edge"))], path: el });
    });
    applyDecorations();
  }

  function drawNode(node, key, geometry, nodeParts) {
    const p = geometry.positions.get(key);
    const x = p.x + node.leftWidth;
    const y = p.y + (node.h - node.bh) / 2;
    let shape = "";
    let attributes = "";
    if (node.type === "op") {
      shape = '<rect class="tg-shape" x="' + f(x) + '" y="' + f(y) + '" width="' + f(node.bw) + '" height="' + f(node.bh) + '" rx="10"></rect>';
      attributes = ' data-op="' + node.ref + '" data-kind="op"';
    } else if (node.type === "tensor") {
      shape = '<rect class="tg-shape" x="' + f(x) + '" y="' + f(y) + '" width="' + f(node.bw) + '" height="' + f(node.bh) + '" rx="2"></rect>';
      attributes = ' data-tensor="' + node.ref + '" data-kind="' + tensors[node.ref].kind + '"';
    } else {
      const c = containers[node.ref];
      const back = c.kind === "fold" ? 2 : 1;
      for (let k = back; k >= 1; k--) {
        shape += '<rect class="tg-stack" x="' + f(x + 3 * k) + '" y="' + f(y - 3 * k + 6) + '" width="' + f(node.bw - 6) + '" height="' + f(node.bh - 6) + '" rx="3" fill="#ffffff" stroke="#7a7a7a"></rect>';
      }
      shape += '<rect class="tg-shape" x="' + f(x) + '" y="' + f(y + 6) + '" width="' + f(node.bw - 6) + '" height="' + f(node.bh - 6) + '" rx="3"></rect>';
      attributes = ' data-container="' + node.ref + '" data-state="collapsed" data-kind="' + (c.kind === "fold" ? "fold" : "module") + '"' +
        (c.kind === "fold" ? ' data-repeats="' + c.repeats + '"' : "");
    }
    const textY = node.type === "box" ? y + 6 : y;
    const textW = node.type === "box" ? node.bw - 6 : node.bw;
    nodeParts.push(
      '<g class="tg-node ' + nodeClasses(node) + '" data-node="' + key + '"' + attributes + ">" + shape +
      textBlock(node.lines, x, textW, textY, node.type !== "box") + "</g>"
    );
    // Parameters drawn beside their op, with their arrows.
    let cursor = p.x;
    node.flanks.left.forEach(function (flank) {
      const fy = p.y + (node.h - flank.h) / 2;
      nodeParts.push(tensorBox(flank.ref, flank.lines, cursor, fy, flank.w, flank.h));
      const from = cursor + flank.w;
      cursor += flank.w + FLANK_GAP;
      nodeParts.push(flankArrow(flank.ref, from, p.y + node.h / 2, x, p.y + node.h / 2));
    });
    cursor = x + node.bw + FLANK_GAP;
    node.flanks.right.forEach(function (flank) {
      const fy = p.y + (node.h - flank.h) / 2;
      nodeParts.push(tensorBox(flank.ref, flank.lines, cursor, fy, flank.w, flank.h));
      nodeParts.push(flankArrow(flank.ref, cursor, p.y + node.h / 2, x + node.bw, p.y + node.h / 2));
      cursor += flank.w + FLANK_GAP;
    });
  }

  function flankArrow(tensor, x1, y1, x2, y2) {
    return link('data-flank="' + tensor + '"', [{ x: x1, y: y1 }, { x: x2, y: y2 }]);
  }

  function anchorOf(key, geometry, bottom) {
    const node = current.view.nodes.get(key);
    const p = geometry.positions.get(key);
    const boxTop = p.y + (node.h - node.bh) / 2;
    return { x: p.x + node.leftWidth + node.bw / 2 - (node.type === "box" ? 3 : 0), y: bottom ? boxTop + node.bh : boxTop + (node.type === "box" ? 6 : 0) };
  }

  function edgePoints(edge, geometry) {
    const start = anchorOf(edge.from, geometry, true);
    const end = anchorOf(edge.to, geometry, false);
    const points = [start];
    if (!edge.back) {
      if (edge.itemFrom !== edge.from) {
        const b = geometry.clusters.get(Number(edge.itemFrom.slice(1)));
        points.push({ x: start.x, y: b.y + b.h });
      }
      const o = geometry.origin.get(edge.block);
      (edge.route || []).forEach(function (point) {
        points.push({ x: o.x + point.x, y: o.y + point.top });
        points.push({ x: o.x + point.x, y: o.y + point.bottom });
      });
      if (edge.itemTo !== edge.to) {
        const b = geometry.clusters.get(Number(edge.itemTo.slice(1)));
        points.push({ x: end.x, y: b.y });
      }
    }
    points.push(end);
    return points;
  }

  // An edge: its line and its arrowhead, in one group (the stepper colours the group).
  function link(attributes, points) {
    const end = points[points.length - 1];
    const before = points[points.length - 2];
    // The line arrives vertically (an S-curve) unless it is level (a parameter beside its op).
    let dx = 0;
    let dy = 1;
    if (end.y - before.y <= 1) {
      const length = Math.hypot(end.x - before.x, end.y - before.y) || 1;
      dx = (end.x - before.x) / length;
      dy = (end.y - before.y) / length;
    }
    const size = 8;
    const half = 3.8;
    const bx = end.x - dx * size;
    const by = end.y - dy * size;
    const line = points.slice(0, -1).concat([{ x: end.x - dx * (size - 1), y: end.y - dy * (size - 1) }]);
    return (
      '<g class="tg-link" ' + attributes + '><path class="tg-edge" d="' + pathOf(line) + '"></path>' +
      '<path class="tg-head" d="M' + f(end.x) + "," + f(end.y) + " L" + f(bx - dy * half) + "," + f(by + dx * half) +
      " L" + f(bx + dy * half) + "," + f(by - dx * half) + ' z"></path></g>'
    );
  }

  // Through the points, downwards: an S-curve from each point to the next.
  function pathOf(points) {
    let d = "M" + f(points[0].x) + "," + f(points[0].y);
    for (let i = 1; i < points.length; i++) {
      const a = points[i - 1];
      const b = points[i];
      if (b.y - a.y > 1) {
        const middle = (a.y + b.y) / 2;
        d += " C" + f(a.x) + "," + f(middle) + " " + f(b.x) + "," + f(middle) + " " + f(b.x) + "," + f(b.y);
      } else {
        d += " L" + f(b.x) + "," + f(b.y);
      }
    }
    return d;
  }

  // ------------------------------------------------------------------------------------------------------------
  // Selection, search and stepper decorations (classes on the drawn elements; no new layout)
  // ------------------------------------------------------------------------------------------------------------

  // Where something is drawn now: its own element, or the box it is inside.
  function drawnKeyOf(key) {
    const view = current.view;
    const kind = key[0];
    const id = Number(key.slice(1));
    if (kind === "o") return view.opRep[id];
    if (kind === "t") {
      if (view.nodes.has(key) || flankElements.has(key)) return key;
      const t = tensors[id];
      if (t.container !== null && view.hiddenBy[t.container] >= 0) return "c" + view.hiddenBy[t.container];
      if (t.producer !== null) return view.opRep[t.producer];
      return null;
    }
    if (kind === "c") {
      const holder = view.hiddenBy[id];
      return holder >= 0 ? "c" + holder : "k" + id;
    }
    return null;
  }

  function elementOf(drawnKey) {
    if (drawnKey === null) return null;
    if (drawnKey[0] === "k") return clusterElements.get(Number(drawnKey.slice(1))) || null;
    return elements.get(drawnKey) || flankElements.get(drawnKey) || null;
  }

  function clearClass(name) {
    viewport.querySelectorAll("." + name).forEach(function (el) {
      el.classList.remove(name);
    });
  }

  function applyDecorations() {
    clearClass("tg-selected");
    clearClass("tg-match");
    clearClass("tg-match-inside");
    if (state.selected !== null) {
      const el = elementOf(drawnKeyOf(state.selected));
      if (el) el.classList.add("tg-selected");
    }
    state.matches.forEach(function (key) {
      const drawn = drawnKeyOf(key);
      const el = elementOf(drawn);
      if (!el) return;
      const own = drawn === key || (key[0] === "c" && drawn === "k" + key.slice(1));
      el.classList.add(own ? "tg-match" : "tg-match-inside");
    });
    applySteps();
  }

  function stepState() {
    // The pass (root) of the current step, the ops it has visited before the current one, and the current op.
    if (state.step === 0) return null;
    const now = steps[state.step - 1];
    const done = new Set();
    for (let s = 0; s < state.step - 1; s++) if (steps[s].root === now.root) done.add(steps[s].op);
    return { root: now.root, current: now.op, done: done };
  }

  function applySteps() {
    clearClass("tg-done");
    clearClass("tg-current");
    clearClass("tg-has-grad");
    edgeElements.forEach(function (item) {
      item.path.classList.remove("tg-delivered");
    });
    const info = stepState();
    app.classList.toggle("tg-stepping", info !== null);
    app.setAttribute("data-step", String(state.step));
    app.setAttribute("data-current-op", info ? String(info.current) : "");
    updateStepLabel(info);
    if (!info) return;
    const view = current.view;
    function ran(op) {
      return op === info.current || info.done.has(op);
    }
    // Ops and boxes.
    const boxRan = new Map();
    const boxTotal = new Map();
    data.backward[info.root].forEach(function (op) {
      const key = view.opRep[op];
      if (key[0] === "o") {
        const el = elements.get(key);
        if (el) {
          if (op === info.current) el.classList.add("tg-current");
          else if (info.done.has(op)) el.classList.add("tg-done");
        }
      } else {
        boxTotal.set(key, (boxTotal.get(key) || 0) + 1);
        if (ran(op)) boxRan.set(key, (boxRan.get(key) || 0) + 1);
        if (op === info.current) {
          const el = elements.get(key);
          if (el) el.classList.add("tg-current");
        }
      }
    });
    boxTotal.forEach(function (total, key) {
      const el = elements.get(key);
      if (el && !el.classList.contains("tg-current") && boxRan.get(key) === total) el.classList.add("tg-done");
    });
    // Tensors that have received (part of) their gradient: a root from the start, others once an op reading
    // them ran its backward.
    const root = data.roots[info.root];
    tensors.forEach(function (t, i) {
      const key = "t" + i;
      const el = elements.get(key) || flankElements.get(key);
      if (!el) return;
      const reached = i === root || t.consumers.some(function (use) { return ran(use[0]); });
      if (reached) el.classList.add("tg-has-grad");
    });
    // Edges along which a gradient has flowed back.
    function nodeRan(key) {
      if (key[0] === "o") return ran(Number(key.slice(1)));
      if (key[0] === "c") return (boxRan.get(key) || 0) > 0;
      return false;
    }
    edgeElements.forEach(function (item) {
      let lit;
      if (item.flank !== undefined) {
        lit = tensors[item.flank].consumers.some(function (use) { return ran(use[0]); });
      } else {
        const edge = item.edge;
        lit = edge.to[0] === "t" ? nodeRan(edge.from) : nodeRan(edge.to);
      }
      if (lit) item.path.classList.add("tg-delivered");
    });
  }

  function updateStepLabel(info) {
    const label = document.getElementById("tg-step-label");
    const total = steps.length;
    document.getElementById("tg-first").disabled = state.step === 0;
    document.getElementById("tg-prev").disabled = state.step === 0;
    document.getElementById("tg-next").disabled = state.step >= total;
    document.getElementById("tg-play").disabled = total === 0;
    if (total === 0) {
      label.textContent = "backward: no ops to step through";
      return;
    }
    if (!info) {
      label.textContent = "backward: " + total + " steps, press ▶";
      return;
    }
    const op = ops[info.current];
    const where = op.container !== null ? " in " + containers[op.container].title : "";
    const pass = data.backward.length > 1 ? " (output " + info.root + ")" : "";
    label.textContent = "backward " + state.step + " / " + total + ": " + op.name + where + pass;
  }

  // ------------------------------------------------------------------------------------------------------------
  // Panel and tooltip
  // ------------------------------------------------------------------------------------------------------------

  function row(name, value) {
    return "<tr><td>" + escapeHtml(name) + "</td><td>" + value + "</td></tr>";
  }

  function histogram(summary) {
    const h = summary.histogram;
    if (!h) return "";
    const counts = h.counts;
    const highest = Math.max.apply(null, counts) || 1;
    const width = 240;
    const height = 44;
    const bar = width / counts.length;
    let bars = "";
    counts.forEach(function (c, i) {
      const barHeight = (c / highest) * (height - 2);
      bars += '<rect x="' + f(i * bar + 0.5) + '" y="' + f(height - barHeight) + '" width="' + f(bar - 1) + '" height="' + f(barHeight) + '"><title>' + c + "</title></rect>";
    });
    return (
      '<svg class="tg-histogram" width="' + width + '" height="' + (height + 14) + '">' + bars +
      '<text x="0" y="' + (height + 12) + '" font-size="10">' + escapeHtml(number(h.low)) + "</text>" +
      '<text x="' + width + '" y="' + (height + 12) + '" font-size="10" text-anchor="end">' + escapeHtml(number(h.high)) + "</text></svg>"
    );
  }

  function statistics(summary, what) {
    if (!summary) return "";
    let out = "<table>";
    if (summary.values !== undefined) out += row(what === "grad" ? "grad" : "values", escapeHtml(summary.values));
    if (what === "grad" && summary.norm !== undefined) out += row("norm", escapeHtml(number(summary.norm)));
    ["mean", "std", "min", "max"].forEach(function (name) {
      if (summary[name] !== undefined) out += row(name, escapeHtml(number(summary[name])));
    });
    if (summary.nan) out += row("NaN", String(summary.nan));
    if (summary.inf) out += row("inf", String(summary.inf));
    out += row("elements", summary.size.toLocaleString("en-US"));
    if (summary.sampled) out += row("sampled", "statistics of " + summary.sampled.toLocaleString("en-US") + " evenly spaced values");
    return out + "</table>" + histogram(summary);
  }

  function tensorName(t) {
    const info = tensors[t];
    return escapeHtml((info.title ? info.title + " " : "") + info.shapeText);
  }

  function opPanel(id) {
    const op = ops[id];
    let out = "<h2>" + escapeHtml(op.name) + "</h2><div class='tg-hint'>op " + id + "</div><table>";
    out += row("module", escapeHtml(op.path || "(top level)"));
    out += row("output", op.outputs.map(tensorName).join("<br>"));
    out += "</table><h3>inputs</h3><ul>";
    op.inputs.forEach(function (t, position) {
      out += "<li>" + (t === null ? "a no-grad input (no edge kept)" : tensorName(t)) + "</li>";
    });
    out += "</ul><h3>saved for backward</h3>";
    if (op.saved === null) out += "<div class='tg-hint'>freed by backward (pass retain_graph=True to backward() to keep it)</div>";
    else if (op.saved.length === 0) out += "<div class='tg-hint'>nothing</div>";
    else out += "<ul>" + op.saved.map(function (text) { return "<li>" + escapeHtml(text) + "</li>"; }).join("") + "</ul>";
    const visits = [];
    steps.forEach(function (s, index) {
      if (s.op === id) visits.push(index + 1);
    });
    out += "<h3>backward</h3><div>" + (visits.length ? "step " + visits.join(", ") + " of " + steps.length : "not visited") + "</div>";
    op.outputs.forEach(function (t) {
      if (tensors[t].grad) out += "<h3>gradient of its output</h3>" + statistics(tensors[t].grad, "grad");
    });
    return out;
  }

  function tensorPanel(id) {
    const t = tensors[id];
    let out = "<h2>" + escapeHtml(t.title || "tensor") + "</h2><div class='tg-hint'>" + escapeHtml(t.kind) + "</div><table>";
    out += row("shape", escapeHtml(t.shape.length ? "(" + t.shape.join(", ") + (t.shape.length === 1 ? ",)" : ")") : "scalar"));
    out += row("dtype", escapeHtml(t.dtype));
    out += row("module", escapeHtml(t.path || "(top level)"));
    out += row("made by", t.producer === null ? "(a leaf)" : escapeHtml(ops[t.producer].name));
    out += row("read by", t.consumers.map(function (use) { return escapeHtml(ops[use[0]].name); }).join(", ") || "(nothing)");
    out += "</table><h3>values</h3>";
    out += t.data ? statistics(t.data, "data") : "<div class='tg-hint'>not kept: the graph keeps only leaves' and roots' values</div>";
    out += "<h3>gradient</h3>";
    if (t.note) out += "<div class='" + (t.problem ? "tg-note-" + t.problem : "") + "'>" + escapeHtml((t.problem ? "⚠ " : "") + t.note) + "</div>";
    out += t.grad ? statistics(t.grad, "grad") : "<div class='tg-hint'>none (backward has not run, or, for a computed tensor, ran outside retain_grads())</div>";
    return out;
  }

  function containerPanel(id) {
    const c = containers[id];
    const drawn = current.view.hiddenBy[id];
    let out = "<h2>" + escapeHtml(c.title) + "</h2><div class='tg-hint'>" +
      (c.kind === "fold" ? "a run of " + c.repeats + " identical blocks" : "a module call") +
      ", " + (drawn === -1 ? "expanded" : drawn === id ? "collapsed (click to expand)" : "inside a collapsed module") + "</div><table>";
    out += row("where", escapeHtml(c.path));
    if (c.kind === "fold") out += row("blocks", escapeHtml(c.name));
    c.inputs.forEach(function (t) { out += row("in", tensorName(t)); });
    c.outputs.forEach(function (t) { out += row("out", tensorName(t)); });
    out += row("ops inside", c.opCount.toLocaleString("en-US"));
    out += row("parameters", c.parameterCount.toLocaleString("en-US"));
    if (c.constants) out += row("no-grad inputs", String(c.constants));
    out += "</table>";
    if (c.parameters.length) {
      out += "<h3>parameters</h3><table>";
      c.parameters.forEach(function (p) {
        const note = p[2] ? "<br><span class='" + (p[3] ? "tg-note-" + p[3] : "tg-hint") + "'>" + escapeHtml((p[3] ? "⚠ " : "") + p[2]) + "</span>" : "";
        out += row(p[0], escapeHtml(p[1]) + note);
      });
      out += "</table>";
    }
    return out;
  }

  function describe(key) {
    const id = Number(key.slice(1));
    if (key[0] === "o") return opPanel(id);
    if (key[0] === "t") return tensorPanel(id);
    return containerPanel(id);
  }

  function showPanel() {
    if (state.selected === null) {
      panel.innerHTML =
        "<h2>" + escapeHtml(data.title) + "</h2><p class='tg-hint'>" + plural(ops.length, "op") + ", " +
        plural(tensors.length, "tensor") + (containers.length ? ", " + plural(containers.length, "module call") + " and fold" + (containers.length === 1 ? "" : "s") : "") + ".</p>" +
        "<p class='tg-hint'>Click a node for its details; click a module's title bar to collapse it, a box to " +
        "expand it. Drag to pan, scroll to zoom. Step through backward with ◀ ▶ (or the arrow keys).</p>";
      return;
    }
    panel.innerHTML = describe(state.selected);
  }

  function brief(key) {
    const id = Number(key.slice(1));
    if (key[0] === "o") {
      const op = ops[id];
      return "<b>" + escapeHtml(op.name) + "</b><br>" + op.outputs.map(tensorName).join("<br>") + "<br>" + escapeHtml(op.path || "(top level)");
    }
    if (key[0] === "t") {
      const t = tensors[id];
      return "<b>" + escapeHtml(t.title || t.kind) + "</b><br>" + escapeHtml(t.shapeText) + "<br>" + escapeHtml(t.path || "(top level)") +
        (t.note ? "<br>" + escapeHtml(t.note) : "");
    }
    const c = containers[id];
    return "<b>" + escapeHtml(c.title) + "</b><br>" + escapeHtml(c.path) + "<br>" + plural(c.opCount, "op") + ", " + plural(c.parameterCount, "parameter");
  }

  // ------------------------------------------------------------------------------------------------------------
  // Changing the state
  // ------------------------------------------------------------------------------------------------------------

  const timings = {};

  function compute() {
    const t0 = performance.now();
    const view = computeView();
    current = { view: view, geometry: layout(view) };
    timings.layout = performance.now() - t0;
  }

  function relayout() {
    compute();
    const t1 = performance.now();
    render();
    timings.render = performance.now() - t1;
    showPanel();
  }

  function setTransform() {
    const v = state.view;
    viewport.setAttribute("transform", "translate(" + f(v.x) + "," + f(v.y) + ") scale(" + v.k + ")");
    svg.classList.toggle("tg-far", v.k < 0.3);
    drawIfNeeded();
  }

  function fit() {
    const g = current.geometry;
    const width = svg.clientWidth || 800;
    const height = svg.clientHeight || 600;
    const margin = 24;
    const k = Math.min((width - 2 * margin) / Math.max(g.width, 1), (height - 2 * margin) / Math.max(g.height, 1), 1.25);
    if (k >= 0.45) {
      state.view = { k: k, x: (width - g.width * k) / 2, y: margin };
    } else {
      // Too big to read whole: start readable, at the output, where backward starts ("fit" shows it all).
      const k2 = 0.85;
      const root = data.roots.length ? drawnKeyOf("t" + data.roots[0]) : null;
      const p = root && current.geometry.positions.get(root);
      const cx = p ? p.x : g.width / 2;
      const cy = p ? p.y : 0;
      state.view = { k: k2, x: width / 2 - cx * k2, y: height - margin - 60 - cy * k2 };
    }
    setTransform();
  }

  function centreOn(drawnKey) {
    let box = null;
    if (drawnKey[0] === "k") box = current.geometry.clusters.get(Number(drawnKey.slice(1)));
    else {
      const p = current.geometry.positions.get(drawnKey);
      const node = current.view.nodes.get(drawnKey);
      if (p && node) box = { x: p.x, y: p.y, w: node.w, h: node.h };
      else if (flankElements.has(drawnKey)) {
        const t = tensors[Number(drawnKey.slice(1))];
        return centreOn("o" + t.flank[0]);
      }
    }
    if (!box) return;
    const v = state.view;
    const width = svg.clientWidth || 800;
    const height = svg.clientHeight || 600;
    const sx = v.x + (box.x + box.w / 2) * v.k;
    const sy = v.y + (box.y + box.h / 2) * v.k;
    if (sx < 40 || sx > width - 40 || sy < 40 || sy > height - 40) {
      v.x += width / 2 - sx;
      v.y += height / 2 - sy;
      setTransform();
    }
  }

  function toggle(id) {
    state.collapsed[id] = state.collapsed[id] ? 0 : 1;
    relayout();
  }

  function revealContainer(id) {
    for (let c = id; c !== null; c = containers[c].parent) state.collapsed[c] = 0;
  }

  function reveal(key) {
    const id = Number(key.slice(1));
    let changed = false;
    function open(c) {
      for (; c !== null; c = containers[c].parent) {
        if (state.collapsed[c]) {
          state.collapsed[c] = 0;
          changed = true;
        }
      }
    }
    if (key[0] === "o") open(ops[id].container);
    else if (key[0] === "t") {
      const t = tensors[id];
      open(t.container);
      if (t.producer !== null) open(ops[t.producer].container);
    } else if (containers[id].parent !== null) open(containers[id].parent);
    if (changed) relayout();
  }

  function select(key) {
    state.selected = key;
    applyDecorations();
    showPanel();
  }

  function runSearch(query) {
    state.query = query;
    const q = query.trim().toLowerCase();
    const found = [];
    if (q) {
      ops.forEach(function (op, i) {
        if (op.name.toLowerCase().indexOf(q) >= 0) found.push("o" + i);
      });
      tensors.forEach(function (t, i) {
        if (t.title && t.title.toLowerCase().indexOf(q) >= 0) found.push("t" + i);
      });
      containers.forEach(function (c, i) {
        if (c.title.toLowerCase().indexOf(q) >= 0 || c.name.toLowerCase().indexOf(q) >= 0) found.push("c" + i);
      });
    }
    state.matches = found;
    state.matchIndex = -1;
    document.getElementById("tg-search-count").textContent = q ? matchesText(found.length) : "";
    applyDecorations();
    return found.slice();
  }

  function nextMatch(backwards) {
    if (!state.matches.length) return null;
    const n = state.matches.length;
    state.matchIndex = backwards ? (state.matchIndex - 1 + n) % n : (state.matchIndex + 1) % n;
    const key = state.matches[state.matchIndex];
    reveal(key);
    select(key);
    const drawn = drawnKeyOf(key);
    if (drawn) centreOn(drawn);
    document.getElementById("tg-search-count").textContent = state.matchIndex + 1 + " of " + matchesText(n);
    return key;
  }

  function goTo(step) {
    state.step = Math.max(0, Math.min(steps.length, step));
    applySteps();
    const info = stepState();
    if (info) {
      const drawn = current.view.opRep[info.current];
      centreOn(drawn);
    }
    return state.step;
  }

  function play() {
    if (state.timer !== null) return pause();
    if (state.step >= steps.length) goTo(0);
    document.getElementById("tg-play").textContent = "❚❚ pause";
    state.timer = setInterval(function () {
      if (state.step >= steps.length) pause();
      else goTo(state.step + 1);
    }, 650);
  }

  function pause() {
    if (state.timer !== null) clearInterval(state.timer);
    state.timer = null;
    document.getElementById("tg-play").textContent = "▶ play";
  }

  // ------------------------------------------------------------------------------------------------------------
  // Events
  // ------------------------------------------------------------------------------------------------------------

  let drag = null;
  svg.addEventListener("pointerdown", function (event) {
    if (event.button !== 0) return;
    drag = { x: event.clientX, y: event.clientY, vx: state.view.x, vy: state.view.y, moved: false, target: event.target };
    svg.setPointerCapture(event.pointerId);
  });
  svg.addEventListener("pointermove", function (event) {
    if (drag) {
      const dx = event.clientX - drag.x;
      const dy = event.clientY - drag.y;
      if (!drag.moved && Math.abs(dx) + Math.abs(dy) > 4) {
        drag.moved = true;
        svg.classList.add("tg-dragging");
        tooltip.hidden = true;
      }
      if (drag.moved) {
        state.view.x = drag.vx + dx;
        state.view.y = drag.vy + dy;
        setTransform();
      }
      return;
    }
    const target = event.target.closest ? event.target.closest("[data-node], .tg-cluster") : null;
    if (!target) {
      tooltip.hidden = true;
      return;
    }
    const key = target.hasAttribute("data-node") ? target.getAttribute("data-node") : "c" + target.getAttribute("data-container");
    tooltip.innerHTML = brief(key);
    tooltip.hidden = false;
    const width = window.innerWidth;
    tooltip.style.left = Math.min(event.clientX + 14, width - 330) + "px";
    tooltip.style.top = event.clientY + 14 + "px";
  });
  svg.addEventListener("pointerleave", function () {
    tooltip.hidden = true;
  });
  svg.addEventListener("pointerup", function (event) {
    if (!drag) return;
    const wasClick = !drag.moved;
    const target = drag.target;
    drag = null;
    svg.classList.remove("tg-dragging");
    if (svg.hasPointerCapture(event.pointerId)) svg.releasePointerCapture(event.pointerId);
    if (wasClick) click(target);
  });

  function click(target) {
    const el = target && target.closest ? target.closest("[data-node], .tg-cluster") : null;
    if (!el) {
      if (state.selected !== null) select(null);
      return;
    }
    if (el.classList.contains("tg-cluster")) {
      // An expanded module: collapse it into its box.
      const id = Number(el.getAttribute("data-container"));
      toggle(id);
      select("c" + id);
      return;
    }
    const key = el.getAttribute("data-node");
    if (key[0] === "c") {
      // A box: expand it.
      const id = Number(key.slice(1));
      toggle(id);
      select("c" + id);
      return;
    }
    select(key);
  }

  svg.addEventListener(
    "wheel",
    function (event) {
      event.preventDefault();
      const v = state.view;
      const rect = svg.getBoundingClientRect();
      const mx = event.clientX - rect.left;
      const my = event.clientY - rect.top;
      const scale = Math.exp(-event.deltaY * (event.deltaMode === 1 ? 0.05 : 0.0015));
      const k = Math.max(0.02, Math.min(4, v.k * scale));
      v.x = mx - ((mx - v.x) * k) / v.k;
      v.y = my - ((my - v.y) * k) / v.k;
      v.k = k;
      setTransform();
    },
    { passive: false }
  );

  const search = document.getElementById("tg-search");
  search.addEventListener("input", function () {
    runSearch(search.value);
  });
  search.addEventListener("keydown", function (event) {
    if (event.key === "Enter") {
      event.preventDefault();
      nextMatch(event.shiftKey);
    } else if (event.key === "Escape") {
      search.value = "";
      runSearch("");
    }
  });
  document.getElementById("tg-saved").addEventListener("change", function (event) {
    state.showSaved = event.target.checked;
    relayout();
  });
  document.getElementById("tg-first").addEventListener("click", function () {
    pause();
    goTo(0);
  });
  document.getElementById("tg-prev").addEventListener("click", function () {
    pause();
    goTo(state.step - 1);
  });
  document.getElementById("tg-next").addEventListener("click", function () {
    pause();
    goTo(state.step + 1);
  });
  document.getElementById("tg-play").addEventListener("click", play);
  document.getElementById("tg-fit").addEventListener("click", fit);
  document.getElementById("tg-expand-all").addEventListener("click", function () {
    state.collapsed.fill(0);
    relayout();
    fit();
  });
  document.getElementById("tg-collapse-all").addEventListener("click", function () {
    containers.forEach(function (c, i) {
      state.collapsed[i] = c.parent === null ? 1 : state.collapsed[i];
    });
    relayout();
    fit();
  });
  window.addEventListener("resize", drawIfNeeded);
  document.addEventListener("keydown", function (event) {
    const tag = event.target && event.target.tagName;
    if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT") return;
    // A focused button takes space and enter itself: the page must not act on them a second time.
    if (tag === "BUTTON" && (event.key === " " || event.key === "Enter")) return;
    if (event.key === "ArrowRight") {
      pause();
      goTo(state.step + 1);
    } else if (event.key === "ArrowLeft") {
      pause();
      goTo(state.step - 1);
    } else if (event.key === " ") {
      event.preventDefault();
      play();
    } else if (event.key === "Home") {
      pause();
      goTo(0);
    } else if (event.key === "End") {
      pause();
      goTo(steps.length);
    } else if (event.key === "f") {
      fit();
    } else if (event.key === "Escape") {
      select(null);
    }
  });

  function buildLegend() {
    const entries = data.legend.map(function (entry) {
      return '<span class="tg-legend-entry"><span class="tg-swatch tg-swatch-' + escapeHtml(entry.key) + '"></span>' + escapeHtml(entry.text) + "</span>";
    });
    entries.push('<span class="tg-legend-entry tg-muted">backward:</span>');
    entries.push('<span class="tg-legend-entry"><span class="tg-swatch tg-swatch-current"></span>op being differentiated</span>');
    entries.push('<span class="tg-legend-entry"><span class="tg-swatch tg-swatch-done"></span>done, or gradient received</span>');
    entries.push('<span class="tg-legend-entry"><span class="tg-swatch tg-swatch-delivered"></span>gradient delivered</span>');
    document.getElementById("tg-legend").innerHTML = '<b class="tg-muted">legend</b> ' + entries.join("");
  }

  // ------------------------------------------------------------------------------------------------------------
  // The API (for scripts and tests)
  // ------------------------------------------------------------------------------------------------------------

  function containerInfo(c) {
    const drawn = current.view.hiddenBy[c.id];
    return {
      id: c.id,
      kind: c.kind,
      title: c.title,
      name: c.name,
      parent: c.parent,
      repeats: c.repeats,
      ops: c.allOps.slice(),
      state: drawn === -1 ? "expanded" : drawn === c.id ? "collapsed" : "hidden",
    };
  }

  window.tinygradExplorer = {
    version: 1,
    ready: false,
    timings: timings,
    data: data,
    ops: function () {
      return ops.map(function (op) {
        return {
          id: op.id,
          name: op.name,
          container: op.container,
          path: op.path,
          inputs: op.inputs.slice(),
          outputs: op.outputs.slice(),
          producers: op.inputs.map(function (t) { return t === null ? null : tensors[t].producer; }),
        };
      });
    },
    containers: function () {
      return containers.map(containerInfo);
    },
    container: function (id) {
      return containerInfo(containers[id]);
    },
    expand: function (id) {
      revealContainer(id);
      relayout();
      return containerInfo(containers[id]);
    },
    collapse: function (id) {
      state.collapsed[id] = 1;
      relayout();
      return containerInfo(containers[id]);
    },
    toggle: function (id) {
      toggle(id);
      return containerInfo(containers[id]);
    },
    expandAll: function () {
      state.collapsed.fill(0);
      relayout();
    },
    visibleOps: function () {
      const shown = [];
      current.view.nodes.forEach(function (node) {
        if (node.type === "op") shown.push(node.ref);
      });
      return shown.sort(function (a, b) { return a - b; });
    },
    visibleNodes: function () {
      const shown = [];
      current.view.nodes.forEach(function (node, key) {
        shown.push({ key: key, type: node.type, ref: node.ref });
      });
      return shown;
    },
    drawnAs: function (key) {
      return drawnKeyOf(key);
    },
    backwardOrder: function () {
      return steps.map(function (s) { return s.op; });
    },
    step: function () {
      return state.step;
    },
    steps: function () {
      return steps.length;
    },
    next: function () {
      return goTo(state.step + 1);
    },
    prev: function () {
      return goTo(state.step - 1);
    },
    goTo: goTo,
    reset: function () {
      pause();
      return goTo(0);
    },
    play: play,
    pause: pause,
    currentOp: function () {
      return state.step === 0 ? null : steps[state.step - 1].op;
    },
    visited: function () {
      return steps.slice(0, state.step).map(function (s) { return s.op; });
    },
    search: function (text) {
      search.value = text;
      return runSearch(text);
    },
    nextMatch: function () {
      return nextMatch(false);
    },
    select: function (key) {
      reveal(key);
      select(key);
      const drawn = key === null ? null : drawnKeyOf(key);
      if (drawn) centreOn(drawn);
      return panel.textContent;
    },
    showSaved: function (on) {
      state.showSaved = !!on;
      document.getElementById("tg-saved").checked = state.showSaved;
      relayout();
    },
    fit: fit,
    view: function () {
      return { x: state.view.x, y: state.view.y, k: state.view.k };
    },
  };

  // ------------------------------------------------------------------------------------------------------------
  // Start
  // ------------------------------------------------------------------------------------------------------------

  buildLegend();
  compute();
  fit(); // before drawing: a big graph is drawn only around what is on screen
  const t1 = performance.now();
  render();
  timings.render = performance.now() - t1;
  showPanel();
  timings.parse = parsed - started;
  timings.total = performance.now() - started;
  timings.ready = performance.now();
  window.tinygradExplorer.ready = true;
  app.setAttribute("data-ready", "true");
})();
