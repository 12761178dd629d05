// The browser bundle's shader table: scripts/build.mjs makes this module from
// shaders/*.wgsl (name without extension → source).
declare module 'qllm:shaders' {
  const sources: Record<string, string>;
  export default sources;
}
