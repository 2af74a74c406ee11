package io.palisade.server;

import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.palisade.agent.shared.SharedServerPool;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Metrics and the health block of the shared servers behind the database and schema rungs. */
final class SharedRungs {
    private SharedRungs() {}

    static void register(SharedServerPool pool, MeterRegistry metrics, Map<String, Object> health) {
        Gauge.builder("palisade_shared_servers", pool, SharedServerPool::serverCount)
                .description("Shared servers (database and schema rungs) on this host").register(metrics);
        Gauge.builder("palisade_shared_servers_running", pool, SharedServerPool::runningServerCount)
                .description("Shared servers running right now").register(metrics);
        // counts since start are counters, which the Prometheus format names with a _total suffix (a gauge named so
        // would lose it)
        FunctionCounter.builder("palisade_shared_server_crashes", pool, p -> p.outages().size())
                .description("Crashes of shared servers since start (each restarted by palisade)").register(metrics);
        FunctionCounter.builder("palisade_shared_server_crash_tenants", pool,
                        p -> p.outages().stream().mapToInt(SharedServerPool.Outage::tenants).sum())
                .description("Tenants affected by shared-server crashes since start (the blast radius, summed)")
                .register(metrics);
        FunctionCounter.builder("palisade_shared_server_crash_downtime_seconds", pool,
                        p -> p.outages().stream().mapToDouble(o -> o.downtime().toMillis() / 1000.0).sum())
                .description("Seconds shared servers were down after crashes since start (upper bound)")
                .register(metrics);
        FunctionCounter.builder("palisade_shared_sessions_cut_off", pool, SharedServerPool::sessionsCutOff)
                .description("Tenant sessions cut off for outliving their plan's statement or idle-in-transaction limit")
                .register(metrics);
        health.put("shared_servers", new java.util.AbstractMap<String, Object>() {
            @Override
            public java.util.Set<Entry<String, Object>> entrySet() {
                Map<String, Object> block = new LinkedHashMap<>();
                block.put("servers", pool.serverCount());
                block.put("running", pool.runningServerCount());
                block.put("tenants_per_server", pool.config().tenantsPerServer());
                List<Map<String, Object>> recent = pool.outages().reversed().stream().limit(5).map(o -> {
                    Map<String, Object> row = new LinkedHashMap<>();
                    row.put("server", o.server());
                    row.put("at", o.at().toString());
                    row.put("tenants_affected", o.tenants());
                    row.put("downtime_ms", o.downtime().toMillis());
                    return row;
                }).toList();
                block.put("recent_crashes", recent);
                return block.entrySet();
            }
        });
    }
}
