/** The part of lzma-native (CommonJS, ships no types) that decompress.ts uses. */
declare module 'lzma-native' {
  const lzma: {
    /** .xz or .lzma ("autoDecoder"); resolves to the whole output. */
    decompress(input: Uint8Array, opts?: object): Promise<Buffer>;
  };
  export default lzma;
}
