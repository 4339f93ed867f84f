/*
 * The lwIP side of `cargo xtask bench`: lwIP 2.1 as Debian's liblwip builds it (its
 * lwipopts.h: TCP_WND and TCP_SND_BUF 64 KiB, MSS 1460, the tcpip thread with core locking),
 * on a TAP netif of ours, doing the same transfers as our stack's endpoint
 * (bench/src/endpoint.rs) with the same line protocol on stdin/stdout:
 *
 *   lwip-endpoint TAP LOCAL_IP tcp-send PEER_IP PORT BYTES
 *   lwip-endpoint TAP LOCAL_IP tcp-recv PORT
 *   lwip-endpoint TAP LOCAL_IP udp-send PEER_IP PORT BYTES SIZE
 *
 * It prints `ready` once the TAP exists, waits for `go`, prints `started` once the role is
 * armed, `done BYTES` when it is over, and keeps lwIP running until stdin ends.
 *
 * TCP runs on lwIP's raw API in the tcpip thread's callbacks (as lwiperf and MicroPython's
 * modlwip do): data is copied into lwIP on send (TCP_WRITE_FLAG_COPY, then tcp_output) and
 * out of the pbufs on receive (pbuf_copy_partial, then tcp_recved), the copies a socket layer
 * makes. UDP sends from the main thread under the core lock. The API used is lwIP's documented
 * raw API (lwip/tcp.h, lwip/udp.h, lwip/tcpip.h, lwip/netif.h).
 *
 * The netif: a reader thread does one blocking read() per frame straight into a pbuf and hands
 * it to ethernet_input under the core lock (what LWIP_TCPIP_CORE_LOCKING_INPUT does, without
 * the tcpip thread's mailbox); output is one write() per frame. Not lwIP's own tapif: Debian's
 * build of it overflows its PBUF_POOL buffers (616-byte pool elements written with whole
 * 1514-byte frames: heap corruption under valgrind and glibc aborts on the first full frame).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "lwip/etharp.h"
#include "lwip/ethip6.h"
#include "lwip/ip_addr.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/sys.h"
#include "lwip/tcp.h"
#include "lwip/tcpip.h"
#include "lwip/udp.h"
#include "netif/ethernet.h"

#define CHUNK 65536
/* Largest frame: 1500-byte MTU plus the Ethernet header. */
#define FRAME_MAX 1514

static unsigned char app_buf[CHUNK];
static sys_sem_t started, finished;
static struct netif netif;
static int tap_fd = -1;

static ip_addr_t peer;
static u16_t port;
static size_t total, moved, size;
static int closing;

static void fail(const char *what, int err)
{
    fprintf(stderr, "lwip-endpoint: %s (%d)\n", what, err);
    exit(1);
}

static void say(const char *line)
{
    printf("%s\n", line);
    fflush(stdout);
}

/* Opens (creates) TAP interface `name` in the current network namespace. */
static void open_tap(const char *name)
{
    struct ifreq ifr;
    tap_fd = open("/dev/net/tun", O_RDWR);
    if (tap_fd < 0) fail("open /dev/net/tun", errno);
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    if (ioctl(tap_fd, TUNSETIFF, &ifr) < 0) fail("TUNSETIFF", errno);
}

/* netif linkoutput: one write() per frame (one pbuf: LWIP_NETIF_TX_SINGLE_PBUF is set). */
static err_t link_output(struct netif *n, struct pbuf *p)
{
    (void)n;
    static unsigned char frame[FRAME_MAX];
    const void *bytes = p->payload;
    if (p->next != NULL) {
        if (p->tot_len > sizeof frame) return ERR_BUF;
        pbuf_copy_partial(p, frame, p->tot_len, 0);
        bytes = frame;
    }
    /* A frame written before the interface is up is refused (EIO): it is lost, as on a cable. */
    return write(tap_fd, bytes, p->tot_len) == p->tot_len ? ERR_OK : ERR_IF;
}

/* Reads frames into pbufs and passes them to lwIP under the core lock. */
static void *reader(void *arg)
{
    (void)arg;
    for (;;) {
        struct pbuf *p = pbuf_alloc(PBUF_RAW, FRAME_MAX, PBUF_RAM);
        if (p == NULL) fail("pbuf_alloc", ERR_MEM);
        ssize_t n = read(tap_fd, p->payload, FRAME_MAX);
        if (n <= 0) {
            pbuf_free(p);
            if (n < 0 && errno == EINTR) continue;
            fail("read TAP", errno);
        }
        pbuf_realloc(p, (u16_t)n);
        LOCK_TCPIP_CORE();
        if (netif.input(p, &netif) != ERR_OK) pbuf_free(p);
        UNLOCK_TCPIP_CORE();
    }
    return NULL;
}

static err_t netif_init_tap(struct netif *n)
{
    static const u8_t mac[6] = {0x02, 0x12, 0x34, 0x56, 0x78, 0xab};
    n->name[0] = 't';
    n->name[1] = 'p';
    n->output = etharp_output;
    n->output_ip6 = ethip6_output;
    n->linkoutput = link_output;
    n->mtu = 1500;
    n->hwaddr_len = 6;
    memcpy(n->hwaddr, mac, 6);
    n->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_ETHERNET;
    return ERR_OK;
}

static void on_err(void *arg, err_t err)
{
    (void)arg;
    fail("connection failed", err);
}

/* Queues as much of the rest as the send buffer takes, sends it, closes after the last byte. */
static void push(struct tcp_pcb *pcb)
{
    while (moved < total) {
        size_t n = total - moved;
        u32_t room = tcp_sndbuf(pcb);
        if (n > room) n = room;
        if (n > 0xffff) n = 0xffff; /* tcp_write takes a u16_t length */
        if (n == 0) break;
        err_t e = tcp_write(pcb, app_buf, (u16_t)n, TCP_WRITE_FLAG_COPY);
        if (e == ERR_MEM) break;
        if (e != ERR_OK) fail("tcp_write", e);
        moved += n;
    }
    tcp_output(pcb);
    if (moved == total && !closing) {
        if (tcp_close(pcb) == ERR_OK) {
            closing = 1;
            tcp_err(pcb, NULL);
            sys_sem_signal(&finished);
        }
    }
}

static err_t on_sent(void *arg, struct tcp_pcb *pcb, u16_t len)
{
    (void)arg;
    (void)len;
    push(pcb);
    return ERR_OK;
}

static err_t on_connected(void *arg, struct tcp_pcb *pcb, err_t err)
{
    (void)arg;
    if (err != ERR_OK) fail("connect", err);
    tcp_sent(pcb, on_sent);
    push(pcb);
    return ERR_OK;
}

static void start_tcp_send(void *arg)
{
    (void)arg;
    struct tcp_pcb *pcb = tcp_new();
    if (pcb == NULL) fail("tcp_new", ERR_MEM);
    tcp_err(pcb, on_err);
    err_t e = tcp_connect(pcb, &peer, port, on_connected);
    if (e != ERR_OK) fail("tcp_connect", e);
    sys_sem_signal(&started);
}

static err_t on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
    (void)arg;
    if (err != ERR_OK) fail("recv", err);
    if (p == NULL) {
        tcp_err(pcb, NULL);
        tcp_recv(pcb, NULL);
        sys_sem_signal(&finished);
        if (tcp_close(pcb) != ERR_OK) {
            tcp_abort(pcb);
            return ERR_ABRT;
        }
        return ERR_OK;
    }
    u16_t n = pbuf_copy_partial(p, app_buf, p->tot_len, 0);
    moved += n;
    tcp_recved(pcb, p->tot_len);
    pbuf_free(p);
    return ERR_OK;
}

static err_t on_accept(void *arg, struct tcp_pcb *pcb, err_t err)
{
    (void)arg;
    if (err != ERR_OK || pcb == NULL) fail("accept", err);
    tcp_err(pcb, on_err);
    tcp_recv(pcb, on_recv);
    return ERR_OK;
}

static void start_tcp_recv(void *arg)
{
    (void)arg;
    struct tcp_pcb *pcb = tcp_new();
    if (pcb == NULL) fail("tcp_new", ERR_MEM);
    err_t e = tcp_bind(pcb, IP_ANY_TYPE, port);
    if (e != ERR_OK) fail("tcp_bind", e);
    struct tcp_pcb *listener = tcp_listen_with_backlog(pcb, 1);
    if (listener == NULL) fail("tcp_listen", ERR_MEM);
    tcp_accept(listener, on_accept);
    sys_sem_signal(&started);
}

/* UDP from the main thread: bursts under the core lock, so that input (ARP) runs in between. */
static void run_udp_send(void)
{
    LOCK_TCPIP_CORE();
    struct udp_pcb *pcb = udp_new();
    UNLOCK_TCPIP_CORE();
    if (pcb == NULL) fail("udp_new", ERR_MEM);
    say("started");
    while (moved < total) {
        int stalled = 0;
        LOCK_TCPIP_CORE();
        for (int i = 0; i < 64 && moved < total; i++) {
            size_t n = total - moved < size ? total - moved : size;
            struct pbuf *p = pbuf_alloc(PBUF_TRANSPORT, (u16_t)n, PBUF_RAM);
            if (p == NULL) {
                stalled = 1;
                break;
            }
            pbuf_take(p, app_buf, (u16_t)n);
            err_t e = udp_sendto(pcb, p, &peer, port);
            pbuf_free(p);
            if (e != ERR_OK) {
                stalled = 1; /* ARP not resolved yet and its queue full */
                break;
            }
            moved += n;
        }
        UNLOCK_TCPIP_CORE();
        if (stalled) {
            struct timespec pause = {0, 100000};
            nanosleep(&pause, NULL);
        }
    }
}

static void on_tcpip_ready(void *arg)
{
    (void)arg;
    sys_sem_signal(&started);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: lwip-endpoint TAP LOCAL_IP (tcp-send PEER PORT BYTES | tcp-recv PORT |"
            " udp-send PEER PORT BYTES SIZE)\n");
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc < 5) usage();
    const char *role = argv[3];
    ip_addr_t local, mask, gw;
    if (!ipaddr_aton(argv[2], &local)) usage();
    IP_ADDR4(&mask, 255, 255, 255, 0);
    IP_ADDR4(&gw, 0, 0, 0, 0);
    int send_tcp = strcmp(role, "tcp-send") == 0;
    int recv_tcp = strcmp(role, "tcp-recv") == 0;
    int send_udp = strcmp(role, "udp-send") == 0;
    if (send_tcp && argc == 7) {
        if (!ipaddr_aton(argv[4], &peer)) usage();
        port = (u16_t)atoi(argv[5]);
        total = strtoull(argv[6], NULL, 10);
    } else if (recv_tcp && argc == 5) {
        port = (u16_t)atoi(argv[4]);
    } else if (send_udp && argc == 8) {
        if (!ipaddr_aton(argv[4], &peer)) usage();
        port = (u16_t)atoi(argv[5]);
        total = strtoull(argv[6], NULL, 10);
        size = strtoull(argv[7], NULL, 10);
        if (size == 0 || size > 1472) usage();
    } else {
        usage();
    }
    memset(app_buf, 0x5a, sizeof app_buf);
    open_tap(argv[1]);

    if (sys_sem_new(&started, 0) != ERR_OK || sys_sem_new(&finished, 0) != ERR_OK)
        fail("sys_sem_new", ERR_MEM);
    tcpip_init(on_tcpip_ready, NULL);
    sys_sem_wait(&started);
    LOCK_TCPIP_CORE();
    if (netif_add(&netif, ip_2_ip4(&local), ip_2_ip4(&mask), ip_2_ip4(&gw), NULL, netif_init_tap,
                  ethernet_input) == NULL)
        fail("netif_add", ERR_IF);
    netif_set_default(&netif);
    netif_set_link_up(&netif);
    netif_set_up(&netif);
    UNLOCK_TCPIP_CORE();
    pthread_t thread;
    if (pthread_create(&thread, NULL, reader, NULL) != 0) fail("pthread_create", errno);
    say("ready");

    char line[64];
    if (fgets(line, sizeof line, stdin) == NULL || strcmp(line, "go\n") != 0) fail("expected go", 0);
    if (send_udp) {
        run_udp_send();
    } else {
        if (tcpip_callback(send_tcp ? start_tcp_send : start_tcp_recv, NULL) != ERR_OK)
            fail("tcpip_callback", ERR_MEM);
        sys_sem_wait(&started);
        say("started");
        sys_sem_wait(&finished);
    }
    printf("done %zu\n", moved);
    fflush(stdout);
    while (fgets(line, sizeof line, stdin) != NULL) {
    }
    return 0;
}
