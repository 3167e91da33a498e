/** The little of gtts@0.2.1 (CommonJS, untyped) that the worker uses. */
declare module 'gtts' {
  class gTTS {
    constructor(text: string, lang?: string, debug?: boolean);
    GOOGLE_TTS_URL: string;
    readonly LANGUAGES: Record<string, string>;
    /** One HTTP request per ≤100-character part, concatenated; the raw responses, whatever their status. */
    stream(): NodeJS.ReadableStream;
  }
  export = gTTS;
}
