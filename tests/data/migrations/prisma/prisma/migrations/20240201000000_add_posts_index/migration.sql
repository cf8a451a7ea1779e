-- AlterTable
ALTER TABLE "posts" ADD COLUMN "published" BOOLEAN NOT NULL DEFAULT false;

-- CreateIndex
CREATE INDEX "posts_author_id_published_idx" ON "posts"("author_id", "published");
