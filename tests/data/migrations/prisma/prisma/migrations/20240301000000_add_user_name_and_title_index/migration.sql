-- AlterTable
ALTER TABLE "users" ADD COLUMN "name" TEXT;

-- CreateIndex
CREATE INDEX "posts_title_idx" ON "posts"("title");
