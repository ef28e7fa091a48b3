/**
 * Load-time fusion for tfjs graph models: `Conv2D → BiasAdd [→ activation]` (and the same after
 * `DepthwiseConv2dNative`) becomes one `_FusedConv2D` / `FusedDepthwiseConv2dNative` node, the form TensorFlow's own
 * grappler writes and tfjs-converter executes as `tf.fused.conv2d` / `tf.fused.depthwiseConv2d`. On `cpu-native` the
 * bias and activation then run in the convolution's epilogue instead of two more passes over the output (on the
 * SE-MobileFaceNet teacher those passes were ~20 % of inference); every other backend has fused kernels too.
 *
 * The arithmetic is unchanged: conv, then + bias, then the activation, as the unfused graph computes it. A chain is
 * fused only when its intermediate outputs feed nothing else and are not graph outputs; the fused node takes the name
 * of the chain's last node, so every consumer keeps its input name.
 */
import type * as tf from '@tensorflow/tfjs';

interface NodeDef {
  name: string;
  op: string;
  input?: string[];
  device?: string;
  attr?: Record<string, { s?: string; i?: string | number; f?: number; list?: { s?: string[]; i?: (string | number)[] }; type?: string; b?: boolean }>;
}

/** TensorFlow activation op → the name _FusedConv2D's fused_ops uses. */
const ACTIVATIONS: Record<string, string> = { Relu: 'Relu', Relu6: 'Relu6', Elu: 'Elu', Sigmoid: 'Sigmoid', LeakyRelu: 'LeakyRelu', Prelu: 'Prelu' };
const FUSED_OP: Record<string, string> = { Conv2D: '_FusedConv2D', DepthwiseConv2dNative: 'FusedDepthwiseConv2dNative' };

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const fromB64 = (s: string | undefined) => (s === undefined ? undefined : Buffer.from(s, 'base64').toString('utf8'));
/** "name", "name:0", "^name" → "name" */
const source = (input: string) => input.replace(/^\^/, '').replace(/:\d+$/, '');

export interface FusionResult {
  readonly artifacts: tf.io.ModelArtifacts;
  /** How many chains became one node, per fused op and activation (e.g. "_FusedConv2D+BiasAdd+Prelu": 33). */
  readonly fused: Readonly<Record<string, number>>;
}

/**
 * Returns artifacts whose topology has the conv + bias [+ activation] chains fused (a new object; the input is not
 * changed). Artifacts without a graph topology (layers models) come back as they are.
 */
export function fuseConvBiasActivation(artifacts: tf.io.ModelArtifacts, keep: readonly string[] = []): FusionResult {
  const topo = artifacts.modelTopology as { node?: NodeDef[] } | undefined;
  if (!topo || !Array.isArray(topo.node) || artifacts.format === 'layers-model') return { artifacts, fused: {} };
  const nodes: NodeDef[] = topo.node.map((n) => ({ ...n, input: n.input ? [...n.input] : undefined, attr: n.attr ? { ...n.attr } : undefined }));
  const byName = new Map(nodes.map((n) => [n.name, n]));
  // Consumers of each node's output (data and control inputs alike); signature outputs count as consumers.
  const uses = new Map<string, number>();
  for (const n of nodes) for (const i of n.input ?? []) uses.set(source(i), (uses.get(source(i)) ?? 0) + 1);
  const signature = (artifacts as { signature?: { outputs?: Record<string, { name?: string }> } }).signature;
  for (const o of Object.values(signature?.outputs ?? {})) if (o.name) uses.set(source(o.name), (uses.get(source(o.name)) ?? 0) + 1);
  // Nodes a caller reads by name (e.g. the teacher's `output:` option) must survive, so they count as used too.
  for (const k of keep) uses.set(source(k), (uses.get(source(k)) ?? 0) + 1);
  // The rank of a Prelu's alpha, where the graph says it: tf.fused ops take rank 0, 1 or 3 only.
  const specRank = new Map((artifacts.weightSpecs ?? []).map((w) => [w.name, w.shape.length]));
  const rankOf = (input: string): number | undefined => {
    const n = source(input);
    if (specRank.has(n)) return specRank.get(n);
    const dims = (byName.get(n)?.attr?.value as { tensor?: { tensorShape?: { dim?: unknown[] } } } | undefined)?.tensor?.tensorShape?.dim;
    return Array.isArray(dims) ? dims.length : undefined;
  };
  const consumer = new Map<string, NodeDef>();
  for (const n of nodes) for (const i of n.input ?? []) if (!i.startsWith('^')) consumer.set(source(i), n);

  const only = (name: string) => (uses.get(name) === 1 ? consumer.get(name) : undefined);
  const removed = new Set<string>();
  const fused: Record<string, number> = {};
  for (const conv of nodes) {
    const fusedOp = FUSED_OP[conv.op];
    if (!fusedOp || removed.has(conv.name) || (conv.input?.length ?? 0) !== 2) continue;
    const fmt = fromB64(conv.attr?.data_format?.s) ?? 'NHWC';
    if (fmt !== 'NHWC') continue;
    const bias = only(conv.name);
    if (!bias || bias.op !== 'BiasAdd' || (bias.input?.length ?? 0) !== 2 || source(bias.input![0]!) !== conv.name) continue;
    if ((fromB64(bias.attr?.data_format?.s) ?? 'NHWC') !== 'NHWC') continue;
    let act = only(bias.name);
    if (act && (!ACTIVATIONS[act.op] || source(act.input![0]!) !== bias.name || (act.op === 'Prelu' ? act.input!.length !== 2 : act.input!.length !== 1))) act = undefined;
    // tfjs-converter's FusedDepthwiseConv2dNative has no leakyrelu_alpha attribute (the alpha would be lost), and the
    // fused ops refuse PReLU weights of rank 2 or 4: those chains stop at the BiasAdd.
    if (act?.op === 'LeakyRelu' && conv.op === 'DepthwiseConv2dNative') act = undefined;
    if (act?.op === 'Prelu' && ![0, 1, 3].includes(rankOf(act.input![1]!) ?? -1)) act = undefined;
    const last = act ?? bias;
    const ops = ['BiasAdd', ...(act ? [ACTIVATIONS[act.op]!] : [])];
    const attr: NonNullable<NodeDef['attr']> = { ...conv.attr, fused_ops: { list: { s: ops.map(b64) } }, num_args: { i: String(act?.op === 'Prelu' ? 2 : 1) } };
    if (act?.op === 'LeakyRelu' && act.attr?.alpha?.f !== undefined) attr.leakyrelu_alpha = { f: act.attr.alpha.f };
    const node: NodeDef = {
      name: last.name, op: fusedOp, attr,
      input: [conv.input![0]!, conv.input![1]!, bias.input![1]!, ...(act?.op === 'Prelu' ? [act.input![1]!] : [])],
      ...(conv.device ? { device: conv.device } : {}),
    };
    for (const n of [conv, bias, ...(act ? [act] : [])]) removed.add(n.name);
    byName.set(last.name, node);
    removed.delete(last.name);
    const key = `${fusedOp}+${ops.join('+')}`;
    fused[key] = (fused[key] ?? 0) + 1;
  }
  if (removed.size === 0 && Object.keys(fused).length === 0) return { artifacts, fused };
  const out = nodes.filter((n) => !removed.has(n.name)).map((n) => byName.get(n.name)!);
  return { artifacts: { ...artifacts, modelTopology: { ...topo, node: out } }, fused };
}
