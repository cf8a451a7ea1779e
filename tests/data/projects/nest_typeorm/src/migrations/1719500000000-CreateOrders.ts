import { MigrationInterface, QueryRunner } from 'typeorm';

export class CreateOrders1719500000000 implements MigrationInterface {
  name = 'CreateOrders1719500000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "orders" ("id" SERIAL PRIMARY KEY, "user_id" integer NOT NULL REFERENCES "users"("id"), "total_cents" integer NOT NULL, "created_at" TIMESTAMP NOT NULL DEFAULT now())`,
    );
    await queryRunner.query(`CREATE INDEX "IDX_orders_user_id" ON "orders" ("user_id")`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX "IDX_orders_user_id"`);
    await queryRunner.query(`DROP TABLE "orders"`);
  }
}
