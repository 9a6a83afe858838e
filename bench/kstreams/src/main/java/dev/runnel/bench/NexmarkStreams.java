package dev.runnel.bench;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.Serializer;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.JoinWindows;
import org.apache.kafka.streams.kstream.Joined;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.StreamJoined;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.WindowStore;

/**
 * The Nexmark queries q0, q1, q2, q3, q4, q5, q7 and q8 as Kafka Streams applications,
 * the same topologies as Runnel's (internal/nexmark/queries.go): the same
 * topics, keys (8-byte big-endian ids) and JSON values, windows of the same
 * size, advance and grace. streambench starts one per run and stops it once
 * it has committed past every input and repartition record.
 *
 * <p>Arguments: NAME=VALUE pairs: bootstrap, query, guarantee
 * (at_least_once or exactly_once_v2), app-id, state-dir, commit-interval-ms,
 * output. The application prints "RUNNING" on stdout when it first reaches
 * that state, and closes on SIGTERM.
 */
public final class NexmarkStreams {
  static final ObjectMapper JSON =
      new ObjectMapper().configure(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES, false);

  public record Bid(long auction, long bidder, long price, String channel, String url, long dateTime, String extra) {}

  public record Person(long id, String name, String emailAddress, String creditCard, String city, String state, long dateTime, String extra) {}

  public record Auction(long id, String itemName, String description, long initialBid, long reserve, long dateTime, long expires, long seller,
      long category, String extra) {}

  public record Q2(long auction, long price) {}

  public record Q3(String name, String city, String state, long id) {}

  public record BidInAuction(Bid bid, Auction auction) {}

  public record AuctionPrice(long category, long price) {}

  public record Q4(long sum, long count, double avg) {
    static Q4 of(long sum, long count) {
      return new Q4(sum, count, count > 0 ? (double) sum / count : 0);
    }
  }

  public record PersonWindow(long id, long start) {}

  public record Q8(long id, String name, long start) {}

  public record AuctionCount(long auction, long count) {}

  public record Q5(long count, List<Long> auctions) {}

  public record Q7(long price, List<Bid> bids) {}

  /** A JSON serde of one type through Jackson. */
  static <T> Serde<T> json(Class<T> type) {
    Serializer<T> ser = (topic, v) -> {
      if (v == null) return null;
      try {
        return JSON.writeValueAsBytes(v);
      } catch (IOException e) {
        throw new IllegalStateException(e);
      }
    };
    Deserializer<T> de = (topic, b) -> {
      if (b == null) return null;
      try {
        return JSON.readValue(b, type);
      } catch (IOException e) {
        throw new IllegalStateException(e);
      }
    };
    return Serdes.serdeFrom(ser, de);
  }

  static final Serde<Bid> BID = json(Bid.class);
  static final Serde<Person> PERSON = json(Person.class);
  static final Serde<Auction> AUCTION = json(Auction.class);

  /** The start of the tumbling 10 s window holding ts, as q8 keys by. */
  static long window8(long ts) {
    return ts - ts % 10_000;
  }

  /** A key-value store's Materialized with its serdes. */
  static <K, V> Materialized<K, V, KeyValueStore<Bytes, byte[]>> store(String name, Serde<K> k, Serde<V> v) {
    return Materialized.<K, V, KeyValueStore<Bytes, byte[]>>as(name).withKeySerde(k).withValueSerde(v);
  }

  /**
   * The bids stream, made only by the queries that read it: a source no
   * processor uses still subscribes the application to its topic.
   */
  static KStream<Long, Bid> bids(StreamsBuilder b) {
    return b.stream("nexmark-bids", Consumed.with(Serdes.Long(), BID));
  }

  static Topology build(String query, String out) {
    StreamsBuilder b = new StreamsBuilder();
    switch (query) {
      case "q0" -> bids(b).to(out, Produced.with(Serdes.Long(), BID));
      case "q1" -> bids(b).mapValues(v -> new Bid(v.auction(), v.bidder(), v.price() * 908 / 1000, v.channel(), v.url(), v.dateTime(), v.extra()))
          .to(out, Produced.with(Serdes.Long(), BID));
      case "q2" -> bids(b).filter((k, v) -> v.auction() % 123 == 0)
          .mapValues(v -> new Q2(v.auction(), v.price()))
          .to(out, Produced.with(Serdes.Long(), json(Q2.class)));
      case "q5" -> {
        Serde<AuctionCount> ac = json(AuctionCount.class);
        Serde<Q5> q5 = json(Q5.class);
        bids(b).groupByKey()
            .windowedBy(TimeWindows.ofSizeAndGrace(Duration.ofSeconds(10), Duration.ofMinutes(1)).advanceBy(Duration.ofSeconds(2)))
            .count(Materialized.as("q5-counts"))
            .toStream()
            .map((w, n) -> KeyValue.pair(w.window().start(), new AuctionCount(w.key(), n)))
            .groupByKey(Grouped.with("q5-by-window", Serdes.Long(), ac))
            .aggregate(() -> new Q5(0, List.of()), (k, c, agg) -> {
              if (c.count() > agg.count()) return new Q5(c.count(), List.of(c.auction()));
              if (c.count() == agg.count()) {
                int i = Collections.binarySearch(agg.auctions(), c.auction());
                if (i < 0) {
                  List<Long> next = new ArrayList<>(agg.auctions());
                  next.add(-i - 1, c.auction());
                  return new Q5(agg.count(), next);
                }
              }
              return agg;
            }, store("q5-hottest", Serdes.Long(), q5))
            .toStream()
            .to(out, Produced.with(Serdes.Long(), q5));
      }
      case "q7" -> {
        Serde<Q7> q7 = json(Q7.class);
        bids(b).selectKey((k, v) -> 0L)
            .groupByKey(Grouped.with("q7-all", Serdes.Long(), BID))
            .windowedBy(TimeWindows.ofSizeAndGrace(Duration.ofSeconds(10), Duration.ofMinutes(1)))
            .aggregate(() -> new Q7(-1, List.of()), (k, v, agg) -> {
              if (v.price() > agg.price()) return new Q7(v.price(), List.of(v));
              if (v.price() == agg.price()) {
                List<Bid> next = new ArrayList<>(agg.bids());
                next.add(v);
                return new Q7(v.price(), next);
              }
              return agg;
            }, Materialized.<Long, Q7, WindowStore<Bytes, byte[]>>as("q7-highest").withKeySerde(Serdes.Long()).withValueSerde(q7))
            .toStream()
            .selectKey((w, v) -> w.window().start())
            .to(out, Produced.with(Serdes.Long(), q7));
      }
      case "q3" -> {
        // A foreign-key table-table join, as Runnel's q3 (a seller may
        // register after their auction, which a stream-table join misses).
        KTable<Long, Person> persons = b.table("nexmark-persons", Consumed.with(Serdes.Long(), PERSON), store("q3-persons", Serdes.Long(), PERSON))
            .filter((k, p) -> p.state().equals("OR") || p.state().equals("ID") || p.state().equals("CA"));
        KTable<Long, Auction> auctions = b.table("nexmark-auctions", Consumed.with(Serdes.Long(), AUCTION), store("q3-auctions", Serdes.Long(), AUCTION))
            .filter((k, a) -> a.category() == 10);
        Serde<Q3> q3 = json(Q3.class);
        auctions.join(persons, Auction::seller, (a, p) -> new Q3(p.name(), p.city(), p.state(), a.id()), store("q3-joined", Serdes.Long(), q3))
            .toStream()
            .to(out, Produced.with(Serdes.Long(), q3));
      }
      case "q4" -> {
        // Flink's q4, as Runnel's: each auction's highest bid made while it
        // ran, updated as bids come, averaged per category.
        Serde<BidInAuction> bia = json(BidInAuction.class);
        Serde<AuctionPrice> price = json(AuctionPrice.class);
        Serde<Q4> q4 = json(Q4.class);
        KTable<Long, Auction> auctions = b.table("nexmark-auctions", Consumed.with(Serdes.Long(), AUCTION), store("q4-auctions", Serdes.Long(), AUCTION));
        bids(b).join(auctions, BidInAuction::new, Joined.with(Serdes.Long(), BID, AUCTION))
            .filter((k, j) -> j.bid().dateTime() >= j.auction().dateTime() && j.bid().dateTime() <= j.auction().expires())
            .groupByKey(Grouped.with(Serdes.Long(), bia))
            .aggregate(() -> new AuctionPrice(0, -1),
                (k, j, agg) -> new AuctionPrice(j.auction().category(), Math.max(agg.price(), j.bid().price())),
                store("q4-winning", Serdes.Long(), price))
            .groupBy((k, p) -> KeyValue.pair(p.category(), p.price()), Grouped.with("q4-by-category", Serdes.Long(), Serdes.Long()))
            .aggregate(() -> Q4.of(0, 0),
                (k, p, agg) -> Q4.of(agg.sum() + p, agg.count() + 1),
                (k, p, agg) -> Q4.of(agg.sum() - p, agg.count() - 1),
                store("q4-averages", Serdes.Long(), q4))
            .toStream()
            .to(out, Produced.with(Serdes.Long(), q4));
      }
      case "q8" -> {
        // Both sides keyed by (person, window start), joined within 10 s,
        // one result per key, as Runnel's q8.
        Serde<PersonWindow> pw = json(PersonWindow.class);
        Serde<Q8> q8 = json(Q8.class);
        KStream<PersonWindow, Person> persons = b.stream("nexmark-persons", Consumed.with(Serdes.Long(), PERSON))
            .selectKey((k, p) -> new PersonWindow(p.id(), window8(p.dateTime())));
        KStream<PersonWindow, Auction> auctions = b.stream("nexmark-auctions", Consumed.with(Serdes.Long(), AUCTION))
            .selectKey((k, a) -> new PersonWindow(a.seller(), window8(a.dateTime())));
        persons.join(auctions, (p, a) -> new Q8(p.id(), p.name(), window8(p.dateTime())),
                JoinWindows.ofTimeDifferenceAndGrace(Duration.ofSeconds(10), Duration.ofMinutes(1)),
                StreamJoined.with(pw, PERSON, AUCTION).withName("q8-join"))
            .groupByKey(Grouped.with(pw, q8))
            .reduce((first, second) -> first, store("q8-new-users", pw, q8))
            .toStream()
            .to(out, Produced.with(pw, q8));
      }
      default -> throw new IllegalArgumentException("no Kafka Streams version of query " + query);
    }
    return b.build();
  }

  public static void main(String[] args) throws InterruptedException {
    Map<String, String> a = new HashMap<>();
    for (String arg : args) {
      int eq = arg.indexOf('=');
      if (eq < 0) throw new IllegalArgumentException("argument " + arg + " is not NAME=VALUE");
      a.put(arg.substring(0, eq), arg.substring(eq + 1));
    }
    Properties p = new Properties();
    p.put(StreamsConfig.APPLICATION_ID_CONFIG, a.get("app-id"));
    p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, a.get("bootstrap"));
    p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, a.getOrDefault("guarantee", "at_least_once"));
    p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, a.getOrDefault("commit-interval-ms", "100"));
    p.put(StreamsConfig.STATE_DIR_CONFIG, a.get("state-dir"));
    p.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
    p.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.LongSerde.class);
    p.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.ByteArraySerde.class);
    p.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, 1);

    KafkaStreams streams = new KafkaStreams(build(a.get("query"), a.get("output")), p);
    CountDownLatch closed = new CountDownLatch(1);
    streams.setStateListener((now, before) -> {
      if (now == KafkaStreams.State.RUNNING && before == KafkaStreams.State.REBALANCING) {
        System.out.println("RUNNING");
        System.out.flush();
      }
      if (now == KafkaStreams.State.ERROR) {
        System.err.println("kafka streams: state ERROR");
        closed.countDown();
      }
    });
    streams.setUncaughtExceptionHandler(e -> {
      e.printStackTrace();
      return org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
    });
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      streams.close(Duration.ofSeconds(30));
      closed.countDown();
    }));
    streams.start();
    closed.await();
    streams.close(Duration.ofSeconds(30));
  }
}
