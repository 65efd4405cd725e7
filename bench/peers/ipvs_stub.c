/* The IPVS sockopt interface for keepalived's checker on a kernel built without IPVS
 * (CONFIG_IP_VS not set: no module, no generic-netlink family, no /proc/net/ip_vs).
 *
 * keepalived refuses to run its checker without IPVS (check_daemon.c start_check: ipvs_start()
 * failing is KEEPALIVED_EXIT_FATAL). Loaded with LD_PRELOAD, this library answers the calls of
 * keepalived's libipvs (keepalived/check/libipvs.c): ipvs_init() first asks the IPVS generic
 * netlink family, which this kernel does not have, then falls back to the setsockopt/getsockopt
 * interface on a raw socket, which is what is caught here. Every command keepalived gives
 * (IP_VS_SO_SET_ADD, ..._ADDDEST, ..._DELDEST, ..._EDITDEST, ...) is appended, with its
 * CLOCK_MONOTONIC time, to the file named by $IPVS_STUB_LOG, one line per command:
 *
 *     <seconds.nanoseconds> <COMMAND> <vip>:<vport> <rip>:<rport> <weight>
 *
 * and answered with success, as the kernel would. The checks themselves (connects, HTTP GETs,
 * retries, timers) are keepalived's own and untouched; bench/peers/checks.py reads the log as
 * it would read `ipvsadm -Ln`. Built by checks.py with `gcc -shared -fPIC`. IPv4 only.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/ip_vs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* libipvs.c ipvs_servicedest_t: what ADDDEST, DELDEST and EDITDEST carry */
struct servicedest {
	struct ip_vs_service_user svc;
	struct ip_vs_dest_user dest;
};

static const char *const set_names[] = {
	"NONE", "INSERT", "ADD", "EDIT", "DEL", "FLUSH", "LIST", "ADDDEST", "DELDEST",
	"EDITDEST", "TIMEOUT", "STARTDAEMON", "STOPDAEMON", "RESTORE", "SAVE", "ZERO",
};

static int is_ipvs(int level, int optname)
{
	return level == IPPROTO_IP && optname >= IP_VS_BASE_CTL && optname <= IP_VS_SO_SET_MAX;
}

static void record(int optname, const void *optval, socklen_t optlen)
{
	const char *path = getenv("IPVS_STUB_LOG");
	char vip[INET_ADDRSTRLEN] = "-", rip[INET_ADDRSTRLEN] = "-", line[256];
	unsigned vport = 0, rport = 0;
	int weight = 0, n, fd;
	struct timespec ts;

	if (!path)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (optval && optlen >= sizeof(struct ip_vs_service_user)) {
		const struct ip_vs_service_user *s = optval;
		inet_ntop(AF_INET, &s->addr, vip, sizeof vip);
		vport = ntohs(s->port);
	}
	if (optval && optlen >= sizeof(struct servicedest)) {
		const struct servicedest *sd = optval;
		inet_ntop(AF_INET, &sd->dest.addr, rip, sizeof rip);
		rport = ntohs(sd->dest.port);
		weight = sd->dest.weight;
	}
	n = snprintf(line, sizeof line, "%lld.%09ld %s %s:%u %s:%u %d\n", (long long)ts.tv_sec,
		     ts.tv_nsec, set_names[optname - IP_VS_BASE_CTL], vip, vport, rip, rport, weight);
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0) {
		if (write(fd, line, (size_t)n) < 0)
			perror("ipvs_stub: write");
		close(fd);
	}
}

int setsockopt(int sockfd, int level, int optname, const void *optval, socklen_t optlen)
{
	static int (*real)(int, int, int, const void *, socklen_t);

	if (is_ipvs(level, optname)) {
		record(optname, optval, optlen);
		return 0;
	}
	if (!real)
		real = (int (*)(int, int, int, const void *, socklen_t))dlsym(RTLD_NEXT, "setsockopt");
	return real(sockfd, level, optname, optval, optlen);
}

int getsockopt(int sockfd, int level, int optname, void *optval, socklen_t *optlen)
{
	static int (*real)(int, int, int, void *, socklen_t *);

	if (is_ipvs(level, optname)) {
		if (optname == IP_VS_SO_GET_INFO && optval && *optlen >= sizeof(struct ip_vs_getinfo)) {
			struct ip_vs_getinfo *info = optval;
			info->version = 0x010201; /* 1.2.1, what ipvsadm prints */
			info->size = 4096;
			info->num_services = 0;
			return 0;
		}
		if (optname == IP_VS_SO_GET_TIMEOUT && optval) {
			memset(optval, 0, *optlen);
			return 0;
		}
		/* service and destination lists (statistics, SNMP): there is no table to read */
		errno = ESRCH;
		return -1;
	}
	if (!real)
		real = (int (*)(int, int, int, void *, socklen_t *))dlsym(RTLD_NEXT, "getsockopt");
	return real(sockfd, level, optname, optval, optlen);
}
