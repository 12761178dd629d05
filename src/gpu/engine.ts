// The WebGPU engine: one adapter + device, counted buffer allocation, shader
// source loading with tiny templating, and a pipeline cache keyed by typed
// objects. Node uses npm `webgpu` (Dawn); a browser or Electron renderer uses
// navigator.gpu. Every GPU failure surfaces as a one-line GpuError.
import { GpuError, UsageError } from '../errors.ts';
import { DAWN_LIMIT_WARNING, filterNativeStderr } from './native-stderr.ts';

export type BufferCategory = 'weights' | 'kv' | 'activations' | 'staging' | 'other';
const CATEGORIES: BufferCategory[] = ['weights', 'kv', 'activations', 'staging', 'other'];

export interface EngineOptions {
  /** Force the f32 path even if shader-f16 exists. */
  noF16?: boolean;
  /** Force the no-subgroup path. */
  noSubgroups?: boolean;
  /** Bytes; createBuffer beyond it throws GpuError. */
  memoryBudget?: number;
  /** opengles => featureLevel 'compatibility' with EGL_PLATFORM=surfaceless. */
  backend?: 'default' | 'vulkan' | 'opengles';
  /**
   * Which kernel configurations to use: 'cpu' for CPU rasterisers (few lanes,
   * many rows each, no barriers), 'gpu' for real GPUs (many threads, K-split).
   * Default: by the adapter. Tests force 'gpu' on lavapipe to check the GPU kernels.
   */
  tuning?: 'auto' | 'cpu' | 'gpu';
}

export interface AdapterSummary {
  vendor: string;
  architecture: string;
  description: string;
  backend: string;
  /** A CPU rasteriser (llvmpipe/lavapipe, SwiftShader, WARP): tunables differ. */
  software: boolean;
  /** Smallest subgroup size the adapter reports (0 when unknown). */
  subgroupMinSize: number;
  subgroupMaxSize: number;
}

const NO_ADAPTER_HELP =
  'install GPU drivers, or on a machine without a GPU install Mesa lavapipe (Debian: apt-get install -t bookworm-backports mesa-vulkan-drivers) and set XDG_RUNTIME_DIR (e.g. export XDG_RUNTIME_DIR=/tmp)';

type DawnModule = { create(opts: string[]): GPU; globals: object };
let dawn: DawnModule | undefined;
const dawnInstances = new Map<string, GPU>();

async function getGpu(backend: EngineOptions['backend']): Promise<GPU> {
  // A browser or an Electron renderer brings its own navigator.gpu.
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  const proc = (globalThis as { process?: { versions?: Record<string, string> } }).process;
  if (nav?.gpu && (!proc?.versions?.node || proc.versions.electron)) return nav.gpu;
  if (!dawn) {
    try {
      dawn = (await import('webgpu')) as unknown as DawnModule;
    } catch (e) {
      throw new GpuError(`WebGPU is unavailable: cannot load the 'webgpu' package (${(e as Error).message.split('\n')[0]}); run npm install`);
    }
    // GPUBufferUsage, GPUShaderStage, GPUMapMode… as globals, like a browser.
    for (const [k, v] of Object.entries(dawn.globals)) if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  }
  const key = backend ?? 'default';
  let gpu = dawnInstances.get(key);
  if (!gpu) {
    const flags: string[] = [];
    if (backend === 'vulkan') flags.push('backend=vulkan');
    if (backend === 'opengles') {
      flags.push('backend=opengles');
      if (typeof process !== 'undefined' && !process.env.EGL_PLATFORM) process.env.EGL_PLATFORM = 'surfaceless';
    }
    gpu = dawn.create(flags);
    dawnInstances.set(key, gpu);
  }
  return gpu;
}

/** Dawn in Node: the native API it picked; a browser hides it. */
function backendName(requested: EngineOptions['backend'], info: GPUAdapterInfo): string {
  if (requested && requested !== 'default') return requested;
  if (!dawn) return 'browser';
  if (/opengl/i.test(info.description)) return 'opengles';
  return process.platform === 'darwin' ? 'metal' : process.platform === 'win32' ? 'd3d12' : 'vulkan';
}

function isSoftware(info: GPUAdapterInfo): boolean {
  const s = `${info.vendor} ${info.architecture} ${info.description} ${(info as { device?: string }).device ?? ''}`.toLowerCase();
  return /llvmpipe|lavapipe|swiftshader|warp|software/.test(s);
}

export class Engine {
  readonly device: GPUDevice;
  readonly adapter: AdapterSummary;
  readonly f16: boolean;
  readonly subgroups: boolean;
  readonly limits: GPUSupportedLimits;
  /** Features enabled on the device. */
  readonly features: ReadonlySet<string>;
  /** Features the adapter offers (whether or not requested). */
  readonly adapterFeatures: ReadonlySet<string>;
  readonly compat: boolean;
  readonly memoryBudget: number;
  /** Kernel configurations for a CPU rasteriser (EngineOptions.tuning). */
  readonly cpuTuning: boolean;
  private readonly sizes = new Map<GPUBuffer, { category: BufferCategory; size: number }>();
  private readonly byCategory: Record<BufferCategory, number> = { weights: 0, kv: 0, activations: 0, staging: 0, other: 0 };
  private total = 0;
  private peak = 0;
  private pending: GpuError | undefined;
  private lostError: GpuError | undefined;
  private destroyed = false;
  private readonly pipelines = new Map<string, Promise<GPUComputePipeline>>();
  private readonly sources = new Map<string, string>();

  private constructor(device: GPUDevice, adapter: AdapterSummary, adapterFeatures: Set<string>, f16: boolean, subgroups: boolean, compat: boolean, budget: number, cpuTuning: boolean) {
    this.adapterFeatures = adapterFeatures;
    this.cpuTuning = cpuTuning;
    this.device = device;
    this.adapter = adapter;
    this.f16 = f16;
    this.subgroups = subgroups;
    this.compat = compat;
    this.limits = device.limits;
    this.features = new Set(device.features as unknown as Iterable<string>);
    this.memoryBudget = budget;
    device.onuncapturederror = (ev: GPUUncapturedErrorEvent) => {
      const err = ev.error;
      const msg = (err.message || String(err)).split('\n')[0];
      if (err instanceof (globalThis as { GPUOutOfMemoryError?: typeof GPUOutOfMemoryError }).GPUOutOfMemoryError! || /out of memory/i.test(msg)) {
        this.pending ??= new GpuError(`GPU out of memory (${msg}): lower contextLength (-c) or use a smaller model`);
      } else {
        this.pending ??= new GpuError(`GPU error: ${msg}`);
      }
    };
    device.lost.then((info) => {
      if (this.destroyed) return;
      const oom = /memory/i.test(info.message);
      this.lostError = new GpuError(
        `GPU device lost (${info.reason}: ${(info.message || 'no message').split('\n')[0]})${oom ? ': lower contextLength (-c) or use a smaller model' : ': restart; if it recurs, update GPU drivers or try noF16 (--no-f16)'}`,
      );
    });
  }

  /** Opens an adapter and a device with the adapter's own maximum limits. */
  static async create(opts: EngineOptions = {}): Promise<Engine> {
    const budget = opts.memoryBudget ?? Number.POSITIVE_INFINITY;
    // NaN would compare false with every total: no limit at all.
    if (typeof budget !== 'number' || Number.isNaN(budget) || budget <= 0) {
      throw new UsageError(`memoryBudget ${String(opts.memoryBudget)} is not a positive number of bytes: pass e.g. 2147483648 (2 GiB), or leave it out for no limit`);
    }
    const gpu = await getGpu(opts.backend);
    const compatOnly = opts.backend === 'opengles';
    let adapter: GPUAdapter | null = null;
    let compat = compatOnly;
    try {
      // Dawn prints its limit warnings to fd 2 during the first requestAdapter (native-stderr.ts).
      const quiet = <T>(f: () => T): T => (dawn ? filterNativeStderr(f, DAWN_LIMIT_WARNING) : f());
      if (!compatOnly) adapter = await quiet(() => gpu.requestAdapter({ powerPreference: 'high-performance' }));
      if (!adapter) {
        adapter = await quiet(() => gpu.requestAdapter({ featureLevel: 'compatibility' } as GPURequestAdapterOptions));
        compat = true;
      }
    } catch (e) {
      throw new GpuError(`no WebGPU adapter (${(e as Error).message.split('\n')[0]}): ${NO_ADAPTER_HELP}`);
    }
    if (!adapter) throw new GpuError(`no WebGPU adapter found${opts.backend && opts.backend !== 'default' ? ` for backend ${opts.backend}` : ''}: ${NO_ADAPTER_HELP}`);
    const info = adapter.info;
    const features: GPUFeatureName[] = [];
    const wantF16 = !opts.noF16 && adapter.features.has('shader-f16');
    const wantSub = !opts.noSubgroups && adapter.features.has('subgroups');
    if (wantF16) features.push('shader-f16');
    if (wantSub) features.push('subgroups' as GPUFeatureName);
    if (adapter.features.has('timestamp-query')) features.push('timestamp-query');
    // Ask for every limit the adapter reports, at its maximum.
    const requiredLimits: Record<string, number> = {};
    const lim = adapter.limits as unknown as Record<string, number>;
    for (const k in lim) {
      const v = lim[k];
      if (typeof v === 'number') requiredLimits[k] = v;
    }
    let device: GPUDevice;
    try {
      device = await adapter.requestDevice({ requiredFeatures: features, requiredLimits, label: 'qllm' });
    } catch (e) {
      throw new GpuError(`cannot open the WebGPU device on ${info.description || info.vendor} (${(e as Error).message.split('\n')[0]}): update GPU drivers or try noF16 (--no-f16)`);
    }
    const summary: AdapterSummary = {
      vendor: info.vendor,
      architecture: info.architecture,
      description: info.description,
      backend: backendName(opts.backend, info),
      software: isSoftware(info),
      subgroupMinSize: (info as { subgroupMinSize?: number }).subgroupMinSize ?? 0,
      subgroupMaxSize: (info as { subgroupMaxSize?: number }).subgroupMaxSize ?? 0,
    };
    const f16 = wantF16 && device.features.has('shader-f16');
    const sub = wantSub && device.features.has('subgroups');
    const cpuTuning = opts.tuning === 'cpu' || ((opts.tuning ?? 'auto') === 'auto' && summary.software);
    return new Engine(device, summary, new Set(adapter.features as unknown as Iterable<string>), f16, sub, compat, budget, cpuTuning);
  }

  /** Allocates a counted buffer; refuses (GpuError) past maxBufferSize or the memory budget. */
  createBuffer(category: BufferCategory, label: string, size: number, usage: GPUBufferUsageFlags): GPUBuffer {
    this.check();
    if (!Number.isFinite(size) || size < 0) throw new GpuError(`buffer '${label}' has invalid size ${size}`);
    const sz = Math.max(4, Math.ceil(size / 4) * 4);
    if (sz > this.limits.maxBufferSize) {
      throw new GpuError(`buffer '${label}' needs ${fmtBytes(sz)} but this GPU's maxBufferSize is ${fmtBytes(this.limits.maxBufferSize)}: lower contextLength (-c) or use a smaller model`);
    }
    if (this.total + sz > this.memoryBudget) {
      throw new GpuError(`buffer '${label}' (${fmtBytes(sz)}) would take GPU memory to ${fmtBytes(this.total + sz)}, over the memoryBudget of ${fmtBytes(this.memoryBudget)}: lower contextLength (-c), use a smaller model, or raise memoryBudget (--memory-budget)`);
    }
    this.device.pushErrorScope('out-of-memory');
    const b = this.device.createBuffer({ label, size: sz, usage });
    this.device.popErrorScope().then((err) => {
      if (err) this.pending ??= new GpuError(`GPU out of memory allocating '${label}' (${fmtBytes(sz)}): lower contextLength (-c) or use a smaller model`);
    });
    this.sizes.set(b, { category, size: sz });
    this.byCategory[category] += sz;
    this.total += sz;
    this.peak = Math.max(this.peak, this.total);
    return b;
  }

  destroyBuffer(b: GPUBuffer): void {
    const e = this.sizes.get(b);
    if (e) {
      this.sizes.delete(b);
      this.byCategory[e.category] -= e.size;
      this.total -= e.size;
    }
    b.destroy();
  }

  memory(): { byCategory: Record<BufferCategory, number>; total: number; peak: number } {
    return { byCategory: { ...this.byCategory }, total: this.total, peak: this.peak };
  }

  /** Registers shader source (for hosts without a file system, e.g. a browser bundle). */
  addShaderSource(name: string, code: string): void {
    this.sources.set(name, code);
  }

  /**
   * shaders/<name>.wgsl with `{{VAR}}` placeholders replaced from vars. An
   * unknown placeholder, or a var the shader does not use, throws.
   */
  shader(name: string, vars: Record<string, string | number> = {}): string {
    const src = this.sources.get(name) ?? loadShaderFile(name);
    this.sources.set(name, src);
    const used = new Set<string>();
    const out = src.replace(/\{\{(\w+)\}\}/g, (_m, k: string) => {
      if (!(k in vars)) throw new GpuError(`shader ${name}.wgsl uses placeholder {{${k}}} but no value was given: internal error, report it`);
      used.add(k);
      return String(vars[k]);
    });
    for (const k of Object.keys(vars)) if (!used.has(k)) throw new GpuError(`shader ${name}.wgsl has no placeholder {{${k}}}: internal error, report it`);
    return out;
  }

  /** A compute pipeline cached by JSON.stringify(key); the key string is also its label. */
  pipeline(key: object, code: string, constants?: Record<string, number>): Promise<GPUComputePipeline> {
    const label = JSON.stringify(key);
    // Cached by everything that makes the pipeline, not by the label alone: a
    // key that forgot a constant (rmsnorm's eps did) must not hand one model
    // another model's pipeline.
    const id = `${label}\u0000${JSON.stringify(constants ?? {})}\u0000${code}`;
    let p = this.pipelines.get(id);
    if (!p) {
      p = this.buildPipeline(label, code, constants);
      this.pipelines.set(id, p);
      p.catch(() => this.pipelines.delete(id));
    }
    return p;
  }

  private async buildPipeline(label: string, code: string, constants?: Record<string, number>): Promise<GPUComputePipeline> {
    // A scope so that a WGSL error is reported here, naming the pipeline, and
    // does not also surface later as an uncaptured error in check().
    this.device.pushErrorScope('validation');
    const module = this.device.createShaderModule({ label, code });
    const scoped = this.device.popErrorScope();
    try {
      const p = await this.device.createComputePipelineAsync({ label, layout: 'auto', compute: { module, entryPoint: 'main', constants } });
      await scoped;
      return p;
    } catch (e) {
      await scoped.catch(() => undefined);
      let detail = (e as Error).message.split('\n')[0];
      try {
        const ci = await module.getCompilationInfo();
        const m = ci.messages.find((x) => x.type === 'error');
        if (m) detail = `line ${m.lineNum}:${m.linePos}: ${m.message.split('\n')[0]}`;
      } catch {}
      throw new GpuError(`pipeline ${label} failed to build (${detail}): update GPU drivers, or try noF16 / noSubgroups (--no-f16 / --no-subgroups)`);
    }
  }

  /** Throws a GpuError if the device was lost or an uncaptured error happened since the last call. */
  check(): void {
    if (this.lostError) throw this.lostError;
    if (this.pending) {
      const e = this.pending;
      this.pending = undefined;
      throw e;
    }
    if (this.destroyed) throw new GpuError('the GPU engine was destroyed: create a new one');
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const b of this.sizes.keys()) b.destroy();
    this.sizes.clear();
    this.total = 0;
    for (const c of CATEGORIES) this.byCategory[c] = 0;
    this.pipelines.clear();
    // Dawn holds the handler natively; it closes over this engine, so left set it
    // kept every destroyed device (and its pipelines) alive: ~2 MiB per model load.
    this.device.onuncapturederror = null;
    this.device.destroy();
  }
}

/** Shader sources built into a bundle (the browser build), by name: no file system needed. */
const bundledShaders = new Map<string, string>();

/** Registers every shader's source for hosts without a file system (browser bundle). */
export function registerShaderSources(sources: Record<string, string>): void {
  for (const [name, code] of Object.entries(sources)) bundledShaders.set(name, code);
}

let shaderDir: string | undefined;
function loadShaderFile(name: string): string {
  if (!/^[\w.-]+$/.test(name)) throw new GpuError(`bad shader name '${name}'`);
  const bundled = bundledShaders.get(name);
  if (bundled !== undefined) return bundled;
  const gbm = (globalThis as { process?: { getBuiltinModule?: (m: string) => unknown } }).process?.getBuiltinModule;
  if (!gbm) throw new GpuError(`shader ${name}.wgsl cannot be read without a file system: register it with engine.addShaderSource`);
  const fs = gbm('node:fs') as typeof import('node:fs');
  const path = gbm('node:path') as typeof import('node:path');
  const url = gbm('node:url') as typeof import('node:url');
  shaderDir ??= path.resolve(path.dirname(url.fileURLToPath(import.meta.url)), '..', '..', 'shaders');
  const file = path.join(shaderDir, `${name}.wgsl`);
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    throw new GpuError(`shader file ${file} is missing: reinstall qllm`);
  }
}

export function fmtBytes(n: number): string {
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(2)} GiB`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(1)} KiB`;
  return `${n} B`;
}
