/*
 * fax-loopback: send a TIFF through two spandsp fax endpoints wired back to
 * back in memory, the way Asterisk's res_fax_spandsp would send it over G.711
 * audio, and report how each side ended.
 *
 *   fax-loopback [--no-ecm] [--header-info TEXT] [--max-seconds N] [-v] TX.tif [RX.tif]
 *
 * The caller sends TX.tif; the answerer receives into RX.tif (default: a new
 * temporary file). Prints one line of JSON:
 *   {"tx_status":N,"rx_status":N,"pages_tx":N,"pages_rx":N,"rx_file":"...",...}
 * where a status is the T.30 completion code (0 = T30_ERR_OK, -1 = that side
 * never reached phase E before the time cap). Exit 0 when both sides end with
 * 0, 1 otherwise, 2 on a usage error.
 *
 * Settings follow res_fax_spandsp's defaults: ECM on, T.4 1-D, T.4 2-D and T.6
 * offered. Built against Debian's libspandsp 0.0.6 (libspandsp-dev).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <tiffio.h>
#include <spandsp.h>

#define BLOCK 160              /* 20 ms of 8 kHz audio, one G.711 frame */
#define SAMPLE_RATE 8000

typedef struct
{
    int done;
    int status;
    t30_stats_t stats;
} side_t;

static void phase_e_handler(t30_state_t *t30, void *user_data, int completion_code)
{
    side_t *side = (side_t *) user_data;

    t30_get_transfer_statistics(t30, &side->stats);
    side->status = completion_code;
    side->done = 1;
}

static void json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++)
    {
        unsigned char c = (unsigned char) *s;
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c < 0x20)
            fprintf(out, "\\u%04x", c);
        else
            fputc(c, out);
    }
    fputc('"', out);
}

static void usage(void)
{
    fprintf(stderr, "usage: fax-loopback [--no-ecm] [--header-info TEXT] [--max-seconds N] [-v] TX.tif [RX.tif]\n");
}

static fax_state_t *endpoint(int calling, int ecm, int verbose, side_t *side)
{
    fax_state_t *fax = fax_init(NULL, calling);
    t30_state_t *t30;

    if (fax == NULL)
        return NULL;
    t30 = fax_get_t30_state(fax);
    /* Audio keeps flowing when a side has nothing to say, as on a real call. */
    fax_set_transmit_on_idle(fax, 1);
    t30_set_tx_ident(t30, calling ? "SMSROUTER" : "LOOPBACK");
    t30_set_ecm_capability(t30, ecm);
    t30_set_supported_compressions(t30, T30_SUPPORT_T4_1D_COMPRESSION | T30_SUPPORT_T4_2D_COMPRESSION | T30_SUPPORT_T6_COMPRESSION);
    t30_set_phase_e_handler(t30, phase_e_handler, side);
    span_log_set_level(fax_get_logging_state(fax), verbose ? (SPAN_LOG_FLOW | SPAN_LOG_SHOW_TAG) : SPAN_LOG_NONE);
    span_log_set_tag(fax_get_logging_state(fax), calling ? "TX" : "RX");
    span_log_set_level(t30_get_logging_state(t30), verbose ? (SPAN_LOG_FLOW | SPAN_LOG_SHOW_TAG) : SPAN_LOG_NONE);
    span_log_set_tag(t30_get_logging_state(t30), calling ? "TX" : "RX");
    return fax;
}

int main(int argc, char *argv[])
{
    const char *tx_file = NULL;
    const char *rx_arg = NULL;
    const char *header_info = NULL;
    char rx_file[4096];
    int ecm = 1;
    int verbose = 0;
    long max_seconds = 1200;   /* 20 minutes of simulated call: far beyond any test page */
    long blocks;
    long i;
    side_t tx = { 0, -1, { 0 } };
    side_t rx = { 0, -1, { 0 } };
    fax_state_t *caller;
    fax_state_t *answerer;
    int16_t caller_audio[BLOCK];
    int16_t answerer_audio[BLOCK];

    for (i = 1; i < argc; i++)
    {
        if (strcmp(argv[i], "--no-ecm") == 0)
            ecm = 0;
        else if (strcmp(argv[i], "-v") == 0)
            verbose = 1;
        else if (strcmp(argv[i], "--header-info") == 0 && i + 1 < argc)
            header_info = argv[++i];
        else if (strcmp(argv[i], "--max-seconds") == 0 && i + 1 < argc)
            max_seconds = strtol(argv[++i], NULL, 10);
        else if (argv[i][0] == '-')
        {
            usage();
            return 2;
        }
        else if (tx_file == NULL)
            tx_file = argv[i];
        else if (rx_arg == NULL)
            rx_arg = argv[i];
        else
        {
            usage();
            return 2;
        }
    }
    if (tx_file == NULL || max_seconds <= 0)
    {
        usage();
        return 2;
    }
    if (rx_arg)
    {
        snprintf(rx_file, sizeof(rx_file), "%s", rx_arg);
    }
    else
    {
        const char *tmp = getenv("TMPDIR");
        int fd;

        snprintf(rx_file, sizeof(rx_file), "%s/fax-loopback-XXXXXX.tif", tmp && *tmp ? tmp : "/tmp");
        if ((fd = mkstemps(rx_file, 4)) < 0)
        {
            perror("fax-loopback: mkstemps");
            return 1;
        }
        close(fd);
    }

    caller = endpoint(1, ecm, verbose, &tx);
    answerer = endpoint(0, ecm, verbose, &rx);
    if (caller == NULL || answerer == NULL)
    {
        fprintf(stderr, "fax-loopback: fax_init failed\n");
        return 1;
    }
    t30_set_tx_file(fax_get_t30_state(caller), tx_file, -1, -1);
    if (header_info)
        t30_set_tx_page_header_info(fax_get_t30_state(caller), header_info);
    t30_set_rx_file(fax_get_t30_state(answerer), rx_file, -1);

    /* Each round: both sides produce 20 ms of audio, then each hears the other's. */
    blocks = max_seconds * (SAMPLE_RATE / BLOCK);
    for (i = 0; i < blocks && !(tx.done && rx.done); i++)
    {
        int n;

        n = fax_tx(caller, caller_audio, BLOCK);
        if (n < BLOCK)
            memset(caller_audio + n, 0, sizeof(int16_t) * (BLOCK - n));
        n = fax_tx(answerer, answerer_audio, BLOCK);
        if (n < BLOCK)
            memset(answerer_audio + n, 0, sizeof(int16_t) * (BLOCK - n));
        fax_rx(answerer, caller_audio, BLOCK);
        fax_rx(caller, answerer_audio, BLOCK);
    }

    printf("{\"tx_status\":%d,\"rx_status\":%d,\"pages_tx\":%d,\"pages_rx\":%d,\"rx_file\":",
           tx.status, rx.status, tx.stats.pages_tx, rx.stats.pages_rx);
    json_string(stdout, rx_file);
    printf(",\"tx_reason\":");
    json_string(stdout, tx.done ? t30_completion_code_to_str(tx.status) : "no phase E before the time cap");
    printf(",\"rx_reason\":");
    json_string(stdout, rx.done ? t30_completion_code_to_str(rx.status) : "no phase E before the time cap");
    printf(",\"bit_rate\":%d,\"ecm\":%s,\"rx_width\":%d,\"rx_length\":%d,\"seconds\":%.1f}\n",
           rx.stats.bit_rate, rx.stats.error_correcting_mode ? "true" : "false",
           rx.stats.width, rx.stats.length, (double) i * BLOCK / SAMPLE_RATE);

    fax_free(caller);
    fax_free(answerer);
    return (tx.done && rx.done && tx.status == T30_ERR_OK && rx.status == T30_ERR_OK) ? 0 : 1;
}
