"""Spark MLlib ALS for recserve: ratings in, userFactors / itemFactors out as JSON part files.

Run by the SparkApplication in als-sparkapplication.yaml (and by pipeline-spark.yaml's spark-als step):

    spark-submit als.py --ratings s3a://bucket/ratings.csv --user-factors s3a://bucket/als/userFactors \
        --item-factors s3a://bucket/als/itemFactors --rank 64 --max-iter 15 --reg 0.1

Each output line is {"id": <the original id>, "features": [...]}, the layout `recserve export
--user-factors … --item-factors …` reads. Spark's ALS wants integer ids, so string ids are indexed first and
mapped back on the way out; ids that are already integers keep their value.
"""
import argparse
import re

from pyspark.ml.feature import StringIndexer
from pyspark.ml.recommendation import ALS
from pyspark.sql import SparkSession
from pyspark.sql import functions as F


def spark_path(uri):
    """s3:// and minio:// (Kubeflow's artifact URIs) are read through Hadoop's s3a connector."""
    return re.sub(r"^(s3|minio)://", "s3a://", uri)


def read_ratings(spark, uri, sep):
    """MovieLens u.data (tab, no header), ratings.dat ('::') or a CSV with a header: the first four columns
    are user, item, rating, timestamp; a file without a rating column weighs every row 1."""
    path = spark_path(uri)
    if sep is None:
        sep = "\t" if path.endswith(".data") else "::" if path.endswith(".dat") else ","
    header = sep == ","
    df = spark.read.option("sep", sep).option("header", header).csv(path)
    cols = df.columns
    rating = F.col(cols[2]).cast("float") if len(cols) > 2 else F.lit(1.0)
    return df.select(F.col(cols[0]).alias("user"), F.col(cols[1]).alias("item"), rating.alias("rating")).dropna()


def indexed(df, column):
    """Integer ids for ALS: the column itself when every id is an int, else a StringIndexer's index."""
    as_int = df.select(F.col(column).cast("int").alias("i"), F.col(column)).where(F.col("i").isNull() | (F.col("i").cast("string") != F.col(column)))
    if as_int.limit(1).count() == 0:
        return df.withColumn(column + "_idx", F.col(column).cast("int")), None
    model = StringIndexer(inputCol=column, outputCol=column + "_idx").fit(df)
    return model.transform(df).withColumn(column + "_idx", F.col(column + "_idx").cast("int")), model.labels


def write_factors(spark, factors, labels, uri):
    """{"id", "features"} lines; with labels, the index is turned back into the original id."""
    if labels is not None:
        lookup = spark.createDataFrame(list(enumerate(labels)), ["idx", "orig"])
        factors = factors.join(lookup, factors.id == lookup.idx).select(F.col("orig").alias("id"), "features")
    factors.select("id", "features").write.mode("overwrite").json(spark_path(uri))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ratings", required=True)
    p.add_argument("--user-factors", required=True)
    p.add_argument("--item-factors", required=True)
    p.add_argument("--sep", default=None, help="field separator (default: by file name)")
    p.add_argument("--rank", type=int, default=64)
    p.add_argument("--max-iter", type=int, default=15)
    p.add_argument("--reg", type=float, default=0.1)
    p.add_argument("--implicit", choices=["true", "false"], default="false")
    p.add_argument("--alpha", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()

    spark = SparkSession.builder.appName("recserve-als").getOrCreate()
    ratings = read_ratings(spark, a.ratings, a.sep)
    ratings, user_labels = indexed(ratings, "user")
    ratings, item_labels = indexed(ratings, "item")
    als = ALS(
        rank=a.rank, maxIter=a.max_iter, regParam=a.reg, implicitPrefs=a.implicit == "true", alpha=a.alpha,
        userCol="user_idx", itemCol="item_idx", ratingCol="rating", coldStartStrategy="drop", seed=a.seed,
    )
    model = als.fit(ratings.cache())
    write_factors(spark, model.userFactors, user_labels, a.user_factors)
    write_factors(spark, model.itemFactors, item_labels, a.item_factors)
    spark.stop()


if __name__ == "__main__":
    main()
